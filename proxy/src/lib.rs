//! Ballast's data plane library: config model, the one config writer, proxying, monitors,
//! the admin API and metrics. The `ballast` binary (the workspace's root package) composes it
//! with the local cloud and the autoscaler; this crate depends on neither.
//!
//! Data flow, top to bottom (see `docs/architecture.md`):
//!
//! - [`config`]: the TOML file → a validated [`config::Config`], every problem in one pass.
//! - [`writer`]: the one config writer: binds listeners, keeps member state, compiles and
//!   publishes each [`snapshot::Snapshot`] with arc-swap, reconciles monitors.
//! - [`snapshot`]: what the data plane reads: vservers, balancers, TLS configs, member lists.
//! - [`member`]: per-member runtime state (health, drain, counts, response time, load), shared
//!   by every snapshot; [`member_view`]: a group's members as the autoscaler reads them.
//!   [`stats`]: per-vserver counters.
//! - [`listener`]: accept loops; each connection goes to [`http`] (`HTTP`, `SSL`) or [`l4`]
//!   (`TCP`, `SSL_TCP`), with [`tls`] termination in front where configured.
//!   [`h1`]: the sans-I/O HTTP/1.1 request core (head, framing, chunked) that
//!   [`http::h1_server`] serves client connections with.
//!   [`member_tls`]: TLS from Ballast to the members of `SSL` and `SSL_TCP` servicegroups.
//!   [`proxy_protocol`]: PROXY protocol v1/v2 headers, read from trusted balancers in front
//!   (before admission) and sent to the members of servicegroups with `proxyprotocol`.
//! - [`error`]: which side failed (client, member, Ballast); local fd exhaustion is never a
//!   member's fault.
//! - [`content_switch`]: `csvserver` and `cspolicy`: the rule language, and a csvserver's
//!   compiled policies, which pick the lbvserver whose plan serves a request.
//! - [`backup`]: `backupvserver` and spillover: whose members serve.
//! - [`surge`]: a servicegroup's per-member `maxclient` and the surge queue that waits for it.
//! - [`lb`]: the load-balancing methods; [`persistence`]: `SOURCEIP` and `COOKIEINSERT`. [`limits`]: `maxconn`, `maxclient`,
//!   `maxclientpersource`, the file descriptor budget.
//! - [`health`]: `TCP` and `HTTP` monitors; [`load_monitors`]: SNMP `LOAD` monitors.
//! - [`accesslog`]: one line per HTTP request and TCP connection, off the data plane's threads.
//! - [`api`]: the NITRO-like admin API; [`save`]: `nsconfig save`; [`metrics`]: `/metrics`.
//! - [`workload`]: the `ballast vm` backend program.
//!
//! The data-plane modules import no control-plane crate.

#![forbid(unsafe_code)]

pub mod accesslog;
pub mod api;
pub mod backup;
pub mod config;
pub mod content_switch;
pub mod error;
pub mod h1;
pub mod health;
pub mod http;
pub mod l4;
pub mod lb;
pub mod limits;
pub mod listener;
pub mod load_monitors;
pub mod member;
pub mod member_tls;
pub mod member_view;
pub mod metrics;
pub mod persistence;
pub mod proxy_protocol;
pub mod save;
pub mod snapshot;
pub mod stats;
pub mod surge;
pub mod tls;
pub mod workload;
pub mod writer;
