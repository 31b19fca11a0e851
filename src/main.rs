use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = greenhoused::cli::Cli::parse();
    let _ = cli;
    std::process::ExitCode::from(greenhoused::exit::SOFTWARE)
}
