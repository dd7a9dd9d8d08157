//! Files the partner tooling writes (keys, the cached token): never through
//! a symbolic link, always whole, secrets readable by their owner alone.

use std::path::Path;

use anyhow::bail;

/// Writes `contents` to `path`, readable by its owner only (mode 0600 on
/// Unix), creating the parent directory; see [`replace_file`].
pub fn write_private(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    replace_file(path, contents, 0o600)
}

/// Writes a file anyone may read (mode 0644 less the umask), e.g. a public key.
pub fn write_public(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    replace_file(path, contents, 0o644)
}

/// Refuses a `path` that is a symbolic link. Whoever planted one where a key
/// or token goes wants the write to land elsewhere (or the secret to leak
/// through it), so the user is told rather than the link quietly replaced.
pub fn refuse_symbolic_link(path: &Path) -> anyhow::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(metadata) if metadata.file_type().is_symlink() => bail!(
            "{} is a symbolic link; refusing to write through it (remove the link or choose another path)",
            path.display()
        ),
        _ => Ok(()),
    }
}

/// Writes `contents` into a new file beside `path`, created with `mode` and
/// `O_EXCL` (so it can be neither an existing file nor a link planted in its
/// place, and a secret is never readable by others, not even for a moment),
/// makes it durable, then renames it over `path`: a reader sees the old file
/// or the new one, never half of one, and rename replaces a link at `path`
/// instead of following it, should one appear after the check.
fn replace_file(path: &Path, contents: &[u8], mode: u32) -> anyhow::Result<()> {
    use std::io::Write;
    refuse_symbolic_link(path)?;
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir)?;
    let mut builder = tempfile::Builder::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(mode));
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = builder.tempfile_in(dir)?;
    file.write_all(contents)?;
    file.as_file().sync_all()?;
    file.persist(path)?;
    Ok(())
}
