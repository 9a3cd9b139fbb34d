fn main() -> std::process::ExitCode {
    anxin::cli::main()
}
