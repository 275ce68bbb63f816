//! The **local cloud**: a CloudStack-compatible API on loopback whose VMs are local processes,
//! for newcomers, the demo and the tests. It speaks the protocol a real management server does
//! (same signatures, envelopes, error codes, async jobs, VM states), so Ballast has one code
//! path.
//!
//! Map:
//! - [`config`]: the TOML file → [`LocalCloudConfig`] (zones, hosts, offerings, templates, users).
//! - `server`: HTTP; `auth`: signature check; `args`: parameters; `api_error`: errors;
//!   `commands`: name → handler; `queries`: the `list*` commands; `vm_commands` + `lifecycle`:
//!   the VM state machine; `limits`: the per-account VM limit; `jobs`: async jobs; `render`:
//!   JSON shapes.
//! - `state`: what is known, behind one mutex; `addresses`, `ids`: addresses and UUIDs.
//! - `process`: a VM's `ballast vm` child process; [`faults`] + `admin`: fault injection,
//!   for admin key pairs only (`admin_auth`).

mod addresses;
mod admin;
mod admin_auth;
mod api_error;
mod args;
mod auth;
mod commands;
pub mod config;
pub mod faults;
mod ids;
mod jobs;
mod lifecycle;
mod limits;
mod process;
mod queries;
mod render;
mod server;
mod state;
mod vm_commands;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use tokio::net::TcpListener;

pub use config::{ConfigError, LocalCloudConfig};
pub use faults::Faults;
use state::Shared;

/// Why the local cloud could not start. (No `source()` chains: each message is complete.)
#[derive(Debug, thiserror::Error)]
pub enum LocalCloudError {
    #[error("invalid local cloud config:\n{0}")]
    Config(ConfigError),
    #[error("local cloud: cannot listen on {address}: {error}")]
    Listen {
        address: SocketAddr,
        error: std::io::Error,
    },
    #[error("local cloud: cannot find the VM program (this executable): {0}")]
    VmProgram(std::io::Error),
    #[error("local cloud: {0}")]
    Io(std::io::Error),
}

impl From<ConfigError> for LocalCloudError {
    fn from(error: ConfigError) -> Self {
        Self::Config(error)
    }
}

impl From<std::io::Error> for LocalCloudError {
    fn from(error: std::io::Error) -> Self {
        Self::Io(error)
    }
}

/// A running local cloud. [`LocalCloud::shutdown`] stops it and reaps every VM process;
/// dropping it stops it too (VM processes are killed).
#[derive(Debug)]
pub struct LocalCloud {
    shared: Arc<Shared>,
    address: SocketAddr,
}

impl LocalCloud {
    /// Binds `config.listen` and starts.
    pub async fn start(config: LocalCloudConfig) -> Result<Self, LocalCloudError> {
        let address = config.listen;
        let listener = TcpListener::bind(address)
            .await
            .map_err(|error| LocalCloudError::Listen { address, error })?;
        Self::start_on(config, listener).await
    }

    /// Starts on an already-bound listener (tests bind `127.0.0.1:0`).
    pub async fn start_on(
        config: LocalCloudConfig,
        listener: TcpListener,
    ) -> Result<Self, LocalCloudError> {
        let vm_command = match &config.vm_command {
            Some(command) => command.clone(),
            None => {
                let exe = std::env::current_exe().map_err(LocalCloudError::VmProgram)?;
                vec![exe.to_string_lossy().into_owned(), "vm".to_string()]
            }
        };
        if let Some(dir) = &config.vm_log_dir {
            std::fs::create_dir_all(dir)?;
        }
        let address = listener.local_addr()?;
        if !address.ip().is_loopback() {
            tracing::warn!(
                %address,
                "the local cloud listens beyond loopback: other machines can reach its API and \
                 its fault endpoint (admin API keys only); listen on 127.0.0.1 unless you mean it"
            );
        }
        let shared = Arc::new(Shared::new(config, vm_command));
        shared.tasks.spawn(server::serve(shared.clone(), listener));
        tracing::info!(
            endpoint = %format!("http://{address}{}", server::API_PATH),
            zones = shared.config.zones.len(),
            hosts = shared.config.hosts.len(),
            address_range = %shared.config.address_range,
            "local cloud listening"
        );
        Ok(Self { shared, address })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.address
    }

    /// `http://<address>/client/api`.
    pub fn endpoint(&self) -> String {
        format!("http://{}{}", self.address, server::API_PATH)
    }

    pub fn config(&self) -> &LocalCloudConfig {
        &self.shared.config
    }

    /// Arms the faults set in `patch` (as `POST /localcloud/v1/faults` does, without its
    /// credentials: this is the owner's handle).
    pub fn inject(&self, patch: &Faults) {
        admin::inject(&self.shared, patch);
    }

    /// Disarms every fault.
    pub fn clear_faults(&self) {
        self.shared.lock().faults = Faults::default();
    }

    /// Kills VM `id`'s process as a crash would; false if it has no process.
    pub fn crash_vm(&self, id: &str) -> bool {
        admin::crash_vm(&self.shared, id)
    }

    /// Fails the host named by id or name: `Down`, its VMs die. False if there is no such host.
    pub fn fail_host(&self, host: &str) -> bool {
        admin::set_host(&self.shared, host, false)
    }

    pub fn recover_host(&self, host: &str) -> bool {
        admin::set_host(&self.shared, host, true)
    }

    /// (VM id, process id) of every VM with a process.
    pub fn vm_pids(&self) -> Vec<(String, u32)> {
        admin::pids(&self.shared)
    }

    /// Stops serving, kills every VM process and waits until all are reaped.
    pub async fn shutdown(self) {
        self.shared.shutdown.cancel();
        self.shared.tasks.close();
        self.shared.tasks.wait().await;
        tracing::info!("local cloud stopped");
    }
}

impl Drop for LocalCloud {
    fn drop(&mut self) {
        self.shared.shutdown.cancel();
    }
}

/// `ballast localcloud --config FILE`: runs until SIGINT or SIGTERM, then shuts down cleanly.
pub async fn run_from_file(path: &Path) -> Result<(), LocalCloudError> {
    use tokio::signal::unix::{SignalKind, signal};
    let config = LocalCloudConfig::load(path)?;
    let cloud = LocalCloud::start(config).await?;
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = terminate.recv() => {}
        _ = interrupt.recv() => {}
    }
    tracing::info!("shutting down the local cloud");
    cloud.shutdown().await;
    Ok(())
}
