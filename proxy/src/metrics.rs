//! Prometheus `/metrics`, on its own listener (`[metrics] listen`).
//!
//! The hot path only bumps atomics (in [`crate::stats`] and [`crate::member`]); a scrape reads
//! them through a collector, so nothing is registered or looked up per request. The body is
//! OpenMetrics when the scraper's `Accept` asks for it, else the classic text format 0.0.4
//! (what `promtool check metrics` lints).
//!
//! Families (all prefixed `ballast_`): `build_info`; per vserver `vserver_requests_total`,
//! `vserver_responses_total{class}`, `vserver_request_bytes_total`,
//! `vserver_response_bytes_total`, `vserver_client_connections`,
//! `vserver_client_connections_accepted_total`, `vserver_response_time_seconds` (histogram),
//! `vserver_errors_total{side,kind}` (a csvserver is a vserver here too: these count what it
//! received and answered);
//! per csvserver `csvserver_policy_hits_total{csvserver,policy,target}`,
//! `csvserver_default_hits_total` and `csvserver_unmatched_total`;
//! `connections`, `maxconn` and `connections_refused_total{vserver,limit}`;
//! per vserver that accepts PROXY headers `proxy_protocol_refused_total{vserver,reason}`;
//! per vserver with persistence `persistence_sessions` and `persistence_hits_total`;
//! `surge_queue_depth{servicegroup}`, `surge_queue_rejected_total{servicegroup,reason}` and
//! `vserver_backup_requests_total{vserver,reason}`;
//! per member `member_up`, `member_state{state}`, `member_active_connections`,
//! `member_requests_total`, `member_connect_failures_total`,
//! `member_tls_handshake_failures_total`, `member_errors_total`,
//! `member_request_bytes_total`,
//! `member_response_bytes_total`, `member_response_time_seconds` (EWMA); and
//! `config_reloads_total{source,result}`.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::{HeaderValue, Request, Response, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::{Registry, Unit};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use snmp_monitor::PollStats;

use crate::error::is_local_exhaustion;
use crate::http::error::ExchangeError;
use crate::limits::{AcceptBackoff, Limit};
use crate::member::MemberStatus;
use crate::snapshot::Snapshot;
use crate::writer::{ChangeSource, WriterOutcomes};

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
const TEXT_004: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The registry behind `/metrics`.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
}

impl Metrics {
    pub fn new(
        snapshot: Arc<ArcSwap<Snapshot>>,
        outcomes: Arc<WriterOutcomes>,
        snmp: Option<Arc<PollStats>>,
    ) -> Metrics {
        let mut registry = Registry::with_prefix("ballast");
        registry.register_collector(Box::new(BallastCollector {
            snapshot,
            outcomes,
            snmp,
        }));
        Metrics { registry }
    }

    /// Adds a collector read at every scrape (the autoscale engine's families).
    pub fn register(&mut self, collector: Box<dyn Collector>) {
        self.registry.register_collector(collector);
    }

    /// The exposition, OpenMetrics or classic text.
    pub fn render(&self, openmetrics: bool) -> String {
        let mut text = String::with_capacity(16 * 1024);
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .expect("writing to a String cannot fail");
        if openmetrics {
            text
        } else {
            to_text_004(&text)
        }
    }
}

/// Serves `GET /metrics` until `shutdown`.
pub async fn serve(listener: TcpListener, metrics: Arc<Metrics>, shutdown: CancellationToken) {
    let mut backoff = AcceptBackoff::new("metrics".into());
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = shutdown.cancelled() => return,
        };
        let stream = match accepted {
            Ok((stream, _)) => {
                backoff.recovered();
                stream
            }
            Err(error) if is_local_exhaustion(&error) => {
                tokio::time::sleep(backoff.failed(&error)).await;
                continue;
            }
            Err(_) => continue,
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let metrics = metrics.clone();
                async move { Ok::<_, Infallible>(respond(&request, &metrics)) }
            });
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn respond(request: &Request<Incoming>, metrics: &Metrics) -> Response<Full<Bytes>> {
    if request.uri().path() != "/metrics" {
        let mut response = Response::new(Full::new(Bytes::from_static(
            b"404 Not Found: metrics are at /metrics\n",
        )));
        *response.status_mut() = http::StatusCode::NOT_FOUND;
        return response;
    }
    let openmetrics = request
        .headers()
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .any(|value| value.contains("application/openmetrics-text"));
    let body = metrics.render(openmetrics);
    let mut response = Response::new(Full::new(Bytes::from(body)));
    let content_type = if openmetrics { OPENMETRICS } else { TEXT_004 };
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// OpenMetrics → text 0.0.4: counters' HELP/TYPE take the `_total` sample name, and `# UNIT`
/// and `# EOF` go (0.0.4 has neither).
fn to_text_004(openmetrics: &str) -> String {
    let counters: Vec<&str> = openmetrics
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line.starts_with("# UNIT ") || line == "# EOF" {
            continue;
        }
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|prefix| {
            let rest = line.strip_prefix(prefix)?;
            let (name, tail) = rest.split_once(' ')?;
            counters
                .contains(&name)
                .then(|| format!("{prefix}{name}_total {tail}"))
        });
        out.push_str(renamed.as_deref().unwrap_or(line));
        out.push('\n');
    }
    out
}

#[derive(Debug)]
struct BallastCollector {
    snapshot: Arc<ArcSwap<Snapshot>>,
    outcomes: Arc<WriterOutcomes>,
    snmp: Option<Arc<PollStats>>,
}

type Labels<'a> = Vec<(&'static str, &'a str)>;

impl Collector for BallastCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let snapshot = self.snapshot.load();
        let mut vservers: Vec<_> = snapshot.vservers.values().collect();
        vservers.sort_by(|a, b| a.name.cmp(&b.name));
        let mut groups: Vec<_> = snapshot.groups.values().collect();
        groups.sort_by(|a, b| a.name.cmp(&b.name));

        gauge(
            &mut encoder,
            "build_info",
            "Version of the running Ballast (always 1).",
            None,
            [(vec![("version", env!("CARGO_PKG_VERSION"))], 1)],
        )?;

        let by_vserver = |f: &dyn Fn(&crate::stats::VserverStats) -> u64| {
            vservers
                .iter()
                .map(|v| (vec![("vserver", &*v.name)], f(&v.stats)))
                .collect::<Vec<_>>()
        };
        counter(
            &mut encoder,
            "vserver_requests",
            "Requests (HTTP) or connections (TCP) received by a vserver.",
            None,
            by_vserver(&|s| s.requests.load(Relaxed)),
        )?;
        let classes = ["1xx", "2xx", "3xx", "4xx", "5xx"];
        let responses = vservers.iter().flat_map(|v| {
            classes.iter().enumerate().map(|(i, class)| {
                (
                    vec![("vserver", &*v.name), ("class", *class)],
                    v.stats.responses[i].load(Relaxed),
                )
            })
        });
        counter(
            &mut encoder,
            "vserver_responses",
            "Responses sent by a vserver, by status class.",
            None,
            responses,
        )?;
        counter(
            &mut encoder,
            "vserver_request",
            "Request body bytes received from clients (TCP: client-to-member bytes).",
            Some(Unit::Bytes),
            by_vserver(&|s| s.request_bytes.load(Relaxed)),
        )?;
        counter(
            &mut encoder,
            "vserver_response",
            "Response body bytes sent to clients (TCP: member-to-client bytes).",
            Some(Unit::Bytes),
            by_vserver(&|s| s.response_bytes.load(Relaxed)),
        )?;
        gauge(
            &mut encoder,
            "vserver_client_connections",
            "Client connections open now.",
            None,
            by_vserver(&|s| s.current_client_connections.load(Relaxed)),
        )?;
        counter(
            &mut encoder,
            "vserver_client_connections_accepted",
            "Client connections accepted.",
            None,
            by_vserver(&|s| s.total_client_connections.load(Relaxed)),
        )?;
        limit_families(&mut encoder, &snapshot, &vservers)?;
        exchange_errors(&mut encoder, &vservers)?;
        proxy_protocol_refusals(&mut encoder, &vservers)?;
        persistence_families(&mut encoder, &vservers)?;
        surge_and_backup(&mut encoder, &groups, &vservers)?;
        switch_families(&mut encoder, &vservers)?;
        {
            let mut family = encoder.encode_descriptor(
                "vserver_response_time",
                "Time from a member having the whole request to its response head.",
                Some(&Unit::Seconds),
                MetricType::Histogram,
            )?;
            for vserver in &vservers {
                let (sum, count, buckets) = vserver.stats.response_time.snapshot();
                let labels: Labels<'_> = vec![("vserver", &*vserver.name)];
                family
                    .encode_family(&labels)?
                    .encode_histogram::<NoLabelSet>(sum, count, &buckets, None)?;
            }
        }

        let members: Vec<_> = groups
            .iter()
            .flat_map(|g| g.members.iter().map(move |m| (g, m)))
            .collect();
        let by_member = |f: &dyn Fn(&crate::member::MemberState) -> u64| {
            members
                .iter()
                .map(|(g, m)| {
                    (
                        vec![("servicegroup", &*g.name), ("member", &*m.label)],
                        f(m),
                    )
                })
                .collect::<Vec<_>>()
        };
        gauge(
            &mut encoder,
            "member_up",
            "1 if the member is UP (monitors and passive detection agree), else 0.",
            None,
            by_member(&|m| u64::from(m.status() == MemberStatus::Up)),
        )?;
        let states = [
            MemberStatus::Up,
            MemberStatus::Down,
            MemberStatus::OutOfService,
            MemberStatus::GoingOutOfService,
            MemberStatus::Busy,
        ];
        let state_series = members.iter().flat_map(|(g, m)| {
            let now = m.status();
            states.iter().map(move |state| {
                (
                    vec![
                        ("servicegroup", &*g.name),
                        ("member", &*m.label),
                        ("state", state.as_str()),
                    ],
                    u64::from(now == *state),
                )
            })
        });
        gauge(
            &mut encoder,
            "member_state",
            "The member's state as NetScaler names it (1 for the current one).",
            None,
            state_series,
        )?;
        gauge(
            &mut encoder,
            "member_active_connections",
            "In-flight requests (HTTP) or open connections (TCP) on a member.",
            None,
            by_member(&|m| m.active()),
        )?;
        counter(
            &mut encoder,
            "member_requests",
            "Requests (HTTP) or connections (TCP) sent to a member.",
            None,
            by_member(&|m| m.counters.requests.load(Relaxed)),
        )?;
        counter(
            &mut encoder,
            "member_connect_failures",
            "Failed connects to a member (passive health detection).",
            None,
            by_member(&|m| m.counters.connect_failures.load(Relaxed)),
        )?;
        counter(
            &mut encoder,
            "member_tls_handshake_failures",
            "Failed TLS handshakes with a member of an SSL or SSL_TCP servicegroup (each is a \
             connect failure too); the log says why.",
            None,
            by_member(&|m| m.counters.tls_handshake_failures.load(Relaxed)),
        )?;
        counter(
            &mut encoder,
            "member_errors",
            "Requests a member failed after they were sent: no response head (502) or none \
             within svrtimeout (504). Failures the client caused never count here.",
            None,
            by_member(&|m| m.counters.errors.load(Relaxed)),
        )?;
        counter(
            &mut encoder,
            "member_request",
            "Request bytes sent to a member (HTTP: request line, headers and body; TCP: \
             client-to-member bytes).",
            Some(Unit::Bytes),
            by_member(&|m| m.counters.request_bytes.load(Relaxed)),
        )?;
        counter(
            &mut encoder,
            "member_response",
            "Response bytes received from a member.",
            Some(Unit::Bytes),
            by_member(&|m| m.counters.response_bytes.load(Relaxed)),
        )?;
        {
            let mut family = encoder.encode_descriptor(
                "member_response_time",
                "Moving average (EWMA, 1/8) of the member's time to first byte.",
                Some(&Unit::Seconds),
                MetricType::Gauge,
            )?;
            for (group, member) in &members {
                let labels: Labels<'_> =
                    vec![("servicegroup", &*group.name), ("member", &*member.label)];
                ConstGauge::new(member.response_time_us() as f64 / 1e6)
                    .encode(family.encode_family(&labels)?)?;
            }
        }

        {
            let mut family = encoder.encode_descriptor(
                "member_metric",
                "Latest value of each metric a LOAD monitor reads from the member (SNMP).",
                None,
                MetricType::Gauge,
            )?;
            for (group, member) in &members {
                for (metric, value) in member.metrics().iter().flat_map(|values| values.iter()) {
                    let labels: Labels<'_> = vec![
                        ("servicegroup", &*group.name),
                        ("member", &*member.label),
                        ("metric", metric),
                    ];
                    ConstGauge::new(*value).encode(family.encode_family(&labels)?)?;
                }
            }
            let mut family = encoder.encode_descriptor(
                "member_load",
                "The member's load from its LOAD monitor: the sum of weight x value / threshold.",
                None,
                MetricType::Gauge,
            )?;
            for (group, member) in &members {
                if let Some(load) = member.load() {
                    let labels: Labels<'_> =
                        vec![("servicegroup", &*group.name), ("member", &*member.label)];
                    ConstGauge::new(f64::from(load) / 1000.0)
                        .encode(family.encode_family(&labels)?)?;
                }
            }
        }
        if let Some(snmp) = &self.snmp {
            snmp_families(&mut encoder, snmp)?;
        }

        let sources = ChangeSource::ALL.iter().flat_map(|&source| {
            let outcome = self.outcomes.of(source);
            [
                ("success", outcome.applied.load(Relaxed)),
                ("failure", outcome.rejected.load(Relaxed)),
            ]
            .map(|(result, count)| (vec![("source", source.as_str()), ("result", result)], count))
        });
        counter(
            &mut encoder,
            "config_reloads",
            "Config changes by source (file: start and SIGHUP; api: admin API edits; \
             autoscaler: its member operations) and result.",
            None,
            sources,
        )?;
        Ok(())
    }
}

/// `connections`, `maxconn` and `connections_refused_total{vserver,limit}`.
fn limit_families(
    encoder: &mut DescriptorEncoder<'_>,
    snapshot: &Snapshot,
    vservers: &[&Arc<crate::snapshot::VserverPlan>],
) -> Result<(), std::fmt::Error> {
    let connections = &snapshot.connections;
    let help = "Client connections open now, all vservers together.";
    let family = encoder.encode_descriptor("connections", help, None, MetricType::Gauge)?;
    ConstGauge::new(connections.open() as i64).encode(family)?;
    let max = connections.max(&snapshot.config.settings);
    let help = "The maxconn in force: [ballast] maxconn, or derived from the descriptor limit.";
    let family = encoder.encode_descriptor("maxconn", help, None, MetricType::Gauge)?;
    ConstGauge::new(max as i64).encode(family)?;
    let refused = vservers.iter().flat_map(|v| {
        Limit::ALL.iter().map(|limit| {
            (
                vec![("vserver", &*v.name), ("limit", limit.as_str())],
                v.stats.refused[limit.index()].load(Relaxed),
            )
        })
    });
    let help = "Client connections refused at a limit (maxconn, maxclient, maxclientpersource).";
    counter(encoder, "connections_refused", help, None, refused)
}

/// `persistence_sessions{vserver}` (`SOURCEIP` entries) and `persistence_hits_total{vserver}`,
/// for vservers with a `persistencetype`.
fn persistence_families(
    encoder: &mut DescriptorEncoder<'_>,
    vservers: &[&Arc<crate::snapshot::VserverPlan>],
) -> Result<(), std::fmt::Error> {
    use crate::config::PersistenceType;
    let persistent: Vec<_> = vservers
        .iter()
        .filter_map(|v| Some((v, v.persistence.as_ref()?)))
        .collect();
    let sessions = persistent
        .iter()
        .filter(|(_, p)| p.kind == PersistenceType::SourceIp)
        .map(|(v, _)| (vec![("vserver", &*v.name)], v.stats.sessions.len()));
    let help = "SOURCEIP persistence entries held (expired ones leave within 5 s).";
    gauge(encoder, "persistence_sessions", help, None, sessions)?;
    let hits = persistent.iter().map(|(v, _)| {
        (
            vec![("vserver", &*v.name)],
            v.stats.persistence_hits.load(Relaxed),
        )
    });
    let help = "Requests (HTTP) or connections (TCP) that went to their persistent member.";
    counter(encoder, "persistence_hits", help, None, hits)
}

/// `proxy_protocol_refused_total{vserver,reason}`, for vservers that accept PROXY headers.
fn proxy_protocol_refusals(
    encoder: &mut DescriptorEncoder<'_>,
    vservers: &[&Arc<crate::snapshot::VserverPlan>],
) -> Result<(), std::fmt::Error> {
    use crate::proxy_protocol::accept::Refusal;
    let accepting = vservers.iter().filter(|v| v.proxy_protocol.is_some());
    let refused = accepting.flat_map(|v| {
        Refusal::ALL.iter().map(|reason| {
            (
                vec![("vserver", &*v.name), ("reason", reason.as_str())],
                v.stats.proxy_protocol_refused[reason.index()].load(Relaxed),
            )
        })
    });
    let help = "Client connections refused for their PROXY protocol header: untrusted (a header \
                from a source not in proxyprotocoltrusted), missing, malformed, timeout (a \
                trusted source's header that is not there, not valid, or not complete in time).";
    counter(encoder, "proxy_protocol_refused", help, None, refused)
}

/// `vserver_errors_total{vserver,side,kind}`: exchanges that ended without a member's response.
fn exchange_errors(
    encoder: &mut DescriptorEncoder<'_>,
    vservers: &[&Arc<crate::snapshot::VserverPlan>],
) -> Result<(), std::fmt::Error> {
    let errors = vservers.iter().flat_map(|v| {
        ExchangeError::ALL.iter().map(|error| {
            (
                vec![
                    ("vserver", &*v.name),
                    ("side", error.side().as_str()),
                    ("kind", error.kind()),
                ],
                v.stats.errors[error.index()].load(Relaxed),
            )
        })
    });
    let help = "HTTP exchanges that ended without a member's response, by the side that failed \
                (client, member, ballast) and kind.";
    counter(encoder, "vserver_errors", help, None, errors)
}

/// `surge_queue_depth{servicegroup}`, `surge_queue_rejected_total{servicegroup,reason}` and
/// `vserver_backup_requests_total{vserver,reason}`.
fn surge_and_backup(
    encoder: &mut DescriptorEncoder<'_>,
    groups: &[&Arc<crate::snapshot::GroupPlan>],
    vservers: &[&Arc<crate::snapshot::VserverPlan>],
) -> Result<(), std::fmt::Error> {
    let depth = groups
        .iter()
        .map(|g| (vec![("servicegroup", &*g.name)], g.surge.depth()));
    let help = "Requests (HTTP) or connections (TCP) waiting in the servicegroup's surge queue \
                for a member under maxclient (NetScaler's surgecount).";
    gauge(encoder, "surge_queue_depth", help, None, depth)?;
    let rejected = groups.iter().flat_map(|g| {
        crate::surge::Rejection::ALL.iter().map(|reason| {
            (
                vec![("servicegroup", &*g.name), ("reason", reason.as_str())],
                g.surge.rejected(*reason),
            )
        })
    });
    let help = "Requests or connections the surge queue refused with 503: full (maxsurgequeue \
                were waiting) or timeout (waited surgequeuetimeout).";
    counter(encoder, "surge_queue_rejected", help, None, rejected)?;
    let diverted = vservers
        .iter()
        .filter(|v| v.switch.is_none())
        .flat_map(|v| {
            crate::backup::Diversion::ALL.iter().map(|reason| {
                (
                    vec![("vserver", &*v.name), ("reason", reason.as_str())],
                    v.stats.backup[*reason as usize].load(Relaxed),
                )
            })
        });
    let help = "Requests (HTTP) or connections (TCP) a vserver passed to its backupvserver: \
                down (no member of its own eligible) or spillover (past sothreshold).";
    counter(encoder, "vserver_backup_requests", help, None, diverted)?;
    let disabled = vservers
        .iter()
        .filter(|v| v.disable_primary_on_down)
        .map(|v| {
            let off = v.disable_primary_on_down && v.stats.disabled_on_down.load(Relaxed);
            (vec![("vserver", &*v.name)], u64::from(off))
        });
    let help = "1 while a vserver with disableprimaryondown is out of service after a failover \
                to its backupvserver (until lbvserver?action=enable).";
    gauge(encoder, "vserver_disabled_on_down", help, None, disabled)
}

/// `snmp_polls_total{result}`, `snmp_replies_dropped_total{reason}`, `snmp_poll_latency_seconds`.
fn snmp_families(
    encoder: &mut DescriptorEncoder<'_>,
    stats: &PollStats,
) -> Result<(), std::fmt::Error> {
    let snapshot = stats.snapshot();
    let polls = snapshot
        .polls
        .iter()
        .map(|(class, n)| (vec![("result", class.as_str())], *n));
    counter(
        encoder,
        "snmp_polls",
        "SNMP polls of LOAD monitors, by result.",
        None,
        polls,
    )?;
    let dropped = snapshot
        .dropped
        .iter()
        .map(|(reason, n)| (vec![("reason", reason.as_str())], *n));
    let help = "SNMP datagrams dropped (malformed, spoofed, late...), by reason.";
    counter(encoder, "snmp_replies_dropped", help, None, dropped)?;
    let help = "SNMP requests sent again after a timeout.";
    counter(
        encoder,
        "snmp_retransmits",
        help,
        None,
        [(vec![], snapshot.retransmits)],
    )?;
    let help = "SNMP polls skipped because the previous one ran past its interval.";
    counter(
        encoder,
        "snmp_missed_intervals",
        help,
        None,
        [(vec![], snapshot.missed_intervals)],
    )?;
    gauge(
        encoder,
        "snmp_agents",
        "Members polled by LOAD monitors.",
        None,
        [(vec![], snapshot.agents)],
    )?;
    let mut family = encoder.encode_descriptor(
        "snmp_poll_latency",
        "Time from an SNMP request to its reply.",
        Some(&Unit::Seconds),
        MetricType::Histogram,
    )?;
    // The poller's buckets are cumulative; prometheus-client wants each bucket's own count.
    let mut below = 0;
    let mut buckets: Vec<(f64, u64)> = Vec::with_capacity(snapshot.latency_buckets.len() + 1);
    for (bound, cumulative) in snapshot
        .latency_buckets
        .iter()
        .chain([(f64::INFINITY, snapshot.latency_count)].iter())
    {
        buckets.push((*bound, cumulative.saturating_sub(below)));
        below = *cumulative;
    }
    let sum = snapshot.latency_sum.as_secs_f64();
    family.encode_histogram::<NoLabelSet>(sum, snapshot.latency_count, &buckets, None)?;
    Ok(())
}

/// A csvserver's requests by where its policies sent them.
fn switch_families(
    encoder: &mut DescriptorEncoder<'_>,
    vservers: &[&Arc<crate::snapshot::VserverPlan>],
) -> Result<(), std::fmt::Error> {
    let switches: Vec<_> = vservers
        .iter()
        .filter_map(|v| Some((&*v.name, v.switch.as_ref()?)))
        .collect();
    let hits = switches.iter().flat_map(|(cs, switch)| {
        switch.policies.iter().map(move |p| {
            let labels = vec![
                ("csvserver", *cs),
                ("policy", &*p.name),
                ("target", &*p.target_name),
            ];
            (labels, p.hits.load(Relaxed))
        })
    });
    let help = "Requests a csvserver's policy matched (and sent to its target lbvserver).";
    counter(encoder, "csvserver_policy_hits", help, None, hits)?;
    let defaults = switches.iter().map(|(cs, switch)| {
        let hits = switch.stats.default_hits.load(Relaxed);
        (vec![("csvserver", *cs)], hits)
    });
    let help = "Requests no policy matched that went to the csvserver's defaultlbvserver.";
    counter(encoder, "csvserver_default_hits", help, None, defaults)?;
    let unmatched = switches.iter().map(|(cs, switch)| {
        let misses = switch.stats.unmatched.load(Relaxed);
        (vec![("csvserver", *cs)], misses)
    });
    let help = "Requests no policy matched on a csvserver without a defaultlbvserver (404).";
    counter(encoder, "csvserver_unmatched", help, None, unmatched)
}

fn counter<'a>(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    unit: Option<Unit>,
    series: impl IntoIterator<Item = (Labels<'a>, u64)>,
) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(name, help, unit.as_ref(), MetricType::Counter)?;
    for (labels, value) in series {
        ConstCounter::new(value).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

fn gauge<'a>(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    unit: Option<Unit>,
    series: impl IntoIterator<Item = (Labels<'a>, u64)>,
) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(name, help, unit.as_ref(), MetricType::Gauge)?;
    for (labels, value) in series {
        ConstGauge::new(value as i64).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_004_renames_counter_metadata_and_drops_openmetrics_lines() {
        let om = "# HELP ballast_vserver_requests Requests.\n# TYPE ballast_vserver_requests counter\nballast_vserver_requests_total{vserver=\"web\"} 3\n# HELP ballast_vserver_response_time_seconds T.\n# TYPE ballast_vserver_response_time_seconds histogram\n# UNIT ballast_vserver_response_time_seconds seconds\n# EOF\n";
        let text = to_text_004(om);
        assert!(
            text.contains("# TYPE ballast_vserver_requests_total counter\n"),
            "{text}"
        );
        assert!(
            text.contains("# HELP ballast_vserver_requests_total Requests.\n"),
            "{text}"
        );
        assert!(
            !text.contains("# UNIT") && !text.contains("# EOF"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE ballast_vserver_response_time_seconds histogram\n"),
            "{text}"
        );
    }
}
