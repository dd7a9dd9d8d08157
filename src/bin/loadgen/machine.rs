//! What the machine and the server used, read from /proc (Linux).

/// Jiffies spent by all CPUs since boot: busy, and in total; and how many
/// CPUs /proc/stat counts.
pub struct CpuTimes {
    pub busy: u64,
    pub total: u64,
    pub cpus: usize,
}

/// The first line of /proc/stat: user nice system idle iowait irq softirq
/// steal (guest time, after these, is already in user and nice). Idle and
/// iowait went unused, and steal went to other machines.
pub fn machine_cpu() -> Option<CpuTimes> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let times: Vec<u64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .take(8)
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    let [user, nice, system, idle, iowait, irq, softirq, steal] = times[..] else {
        return None;
    };
    let busy = user + nice + system + irq + softirq;
    let cpus = stat
        .lines()
        .filter(|line| {
            line.starts_with("cpu") && line.as_bytes().get(3).is_some_and(u8::is_ascii_digit)
        })
        .count();
    Some(CpuTimes {
        busy,
        total: busy + idle + iowait + steal,
        cpus,
    })
}

/// The peak resident set of a process, from /proc (Linux).
pub fn peak_rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}
