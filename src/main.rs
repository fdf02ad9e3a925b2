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
    // One line that people and scripts can read, on stdout. Optional doors
    // are named only when open.
    let mut listening = format!(
        "duplex listening tcp={} http={}",
        server.line_addr(),
        server.web_addr()
    );
    if let Some(addr) = server.https_addr() {
        listening += &format!(" https={addr}");
    }
    if let Some(addr) = server.tcps_addr() {
        listening += &format!(" tcps={addr}");
    }
    if let Some(dir) = server.static_dir() {
        listening += &format!(" static={}", dir.display());
    }
    if !config.trust_proxies.is_empty() {
        let proxies: Vec<String> = config.trust_proxies.iter().map(ToString::to_string).collect();
        listening += &format!(" trust-proxy={}", proxies.join(","));
    }
    if config.step {
        listening += " step=stdin";
    }
    if let Some((addr, instance)) = server.redis() {
        listening += &format!(" redis={addr} instance={instance}");
    }
    println!("{listening}");
    if let Some(pin) = server.tls_pin() {
        // No authority vouches for a certificate made at start; its pin
        // lets a learner trust this one key, and no other.
        println!(
            "duplex tls: self-signed certificate for {}; its SHA-256 SPKI pin is {pin}",
            duplex::tls::SELF_SIGNED_NAMES.join(", ")
        );
        println!("duplex tls: to trust it in Chromium: --ignore-certificate-errors-spki-list={pin}");
    }
    let _ = std::io::stdout().flush();
    let mut try_it = format!(
        "telnet {} {} | open http://{}/",
        server.line_addr().ip(),
        server.line_addr().port(),
        server.web_addr()
    );
    if let Some(addr) = server.https_addr() {
        try_it += &format!(" or https://{addr}/");
    }
    log::info!("{try_it}");
    if config.step {
        println!("{}", duplex::server::STEP_HELP);
    }
    match server.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("duplex: event loop failed: {e}");
            ExitCode::FAILURE
        }
    }
}
