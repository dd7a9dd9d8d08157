use clap::Parser;

/// mimalloc instead of glibc's malloc: the request path allocates many small
/// short-lived blocks across threads, where glibc spent ~12% of the server's
/// CPU (BENCHMARKS.md), and argon2's 19 MiB blocks are mapped and returned to
/// the system on their own instead of fragmenting the heap.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = sales_order_api::cli::Cli::parse();
    match cli.run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
