//! `plumb`: the command-line client of the query service.

fn main() -> std::process::ExitCode {
    plumbline_query::cli::main()
}
