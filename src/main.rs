/// The server's allocator: mimalloc instead of glibc malloc (the reservation rush spent ~15% of
/// the server's CPU in malloc/free; see docs/BENCHMARKS.md, "Reservation rush").
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    anxin::cli::main()
}
