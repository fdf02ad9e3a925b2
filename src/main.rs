use clap::Parser;
use duplex::{Config, Server};
use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    let config = Config::parse();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("duplex=info")).init();
    let mut server = match Server::bind(config.clone()) {
        Ok(server) => server,
        Err(e) => {
            eprintln!("duplex: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = server.handle_signals() {
        eprintln!("duplex: cannot handle signals: {e}");
        return ExitCode::FAILURE;
    }
    // One line that people and scripts can read, on stdout.
    println!(
        "duplex listening tcp={} http={}",
        server.line_addr(),
        server.web_addr()
    );
    let _ = std::io::stdout().flush();
    log::info!(
        "telnet {} {} | open http://{}/",
        server.line_addr().ip(),
        server.line_addr().port(),
        server.web_addr()
    );
    match server.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("duplex: event loop failed: {e}");
            ExitCode::FAILURE
        }
    }
}
