use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    keep_large_allocations_out_of_the_heap();
    let cli = sales_order_api::cli::Cli::parse();
    match cli.run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Each argon2 verification allocates ~19 MiB. glibc raises its mmap
/// threshold after the first such block is freed, so later ones come from the
/// heap, which fragments and never shrinks: a login flood grew the server to
/// ~240 MB. Pinning the threshold keeps every block over 4 MiB in its own
/// mapping, returned to the system when freed.
fn keep_large_allocations_out_of_the_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator tuning; no memory is touched.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 4 * 1024 * 1024);
    }
}
