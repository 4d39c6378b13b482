//! `bestow`: parses the command line, loads configuration, and hands over to the library.

use std::process::ExitCode;

use bestow::cli::{Cli, Command};
use bestow::{Application, Config};
use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(cli.config.as_deref()) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    if let Err(error) = bestow_core::telemetry::init_logging(config.telemetry.log_format, &config.telemetry.log_level) {
        eprintln!("error: invalid configuration: setting `log_level`: {error}");
        return ExitCode::from(2);
    }
    let outcome = match cli.command {
        Command::Serve => serve(Application::build(&config).await).await,
        Command::Auth => serve(Application::build_auth_service(&config).await).await,
        Command::Events => serve(Application::build_events_service(&config).await).await,
        Command::Gateway => serve(Application::build_gateway(&config).await).await,
        Command::Admin(command) => bestow::admin::run(&config, command).await,
        Command::Healthcheck => bestow::healthcheck::run(&config).await,
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(app: anyhow::Result<Application>) -> anyhow::Result<()> {
    app?.run_until(bestow_core::http::shutdown_signal()).await
}
