//! The four changes `reconfig` makes through the admin API, and when the data plane acts on
//! each.

use anyhow::{Context, Result, bail};
use hyper::Method;
use serde_json::{Value, json};
use tokio::time::{Duration, Instant};

use super::outcome::{Repetition, Started};
use super::{GROUP, HEAVY, SERVED_WITHIN, SETTLE, WATCH};
use crate::backend::WatchedBackend;
use crate::nitro::AdminClient;

/// The changes and the two members they are about.
pub(super) struct Members<'a> {
    pub(super) admin: &'a AdminClient,
    /// `P`: bound, then unbound.
    pub(super) new_member: &'a WatchedBackend,
    /// `Q`: reweighted, disabled, then put back.
    pub(super) changed: &'a WatchedBackend,
}

impl Members<'_> {
    /// Repetitions of the four changes, starting half a second into the load `window` and
    /// starting no repetition that would likely not end inside it.
    pub(super) async fn change_repeatedly(
        &self,
        repeats: usize,
        window: (Instant, Instant),
    ) -> Result<Vec<Repetition>> {
        let (start, end) = window;
        tokio::time::sleep_until(start + Duration::from_millis(500)).await;
        let mut reps = Vec::new();
        let mut longest = Duration::ZERO;
        while reps.len() < repeats {
            let began = Instant::now();
            if !reps.is_empty() && began + longest * 3 / 2 + Duration::from_millis(500) > end {
                break;
            }
            let rep = self
                .change_once()
                .await
                .with_context(|| format!("change repetition {}", reps.len() + 1))?;
            longest = longest.max(began.elapsed());
            reps.push(rep);
            println!(
                "reconfig: bind {:.1} ms (served after {:.1}), weight {:.1} ms (served after {:.1}), \
                 disable {:.1} ms, unbind {:.1} ms, {} request(s) after a stop",
                rep.bind.api.as_secs_f64() * 1e3,
                rep.bind.served.as_secs_f64() * 1e3,
                rep.weight.api.as_secs_f64() * 1e3,
                rep.weight.served.as_secs_f64() * 1e3,
                rep.disable_api.as_secs_f64() * 1e3,
                rep.unbind_api.as_secs_f64() * 1e3,
                rep.after_stop
            );
        }
        if Instant::now() > end {
            bail!("the changes outlasted the load window: give them a longer one");
        }
        Ok(reps)
    }

    /// Binds or changes a member of [`GROUP`]: `fields` are the binding's, less the group.
    async fn put_member(&self, mut fields: Value) -> Result<Value> {
        fields["servicegroupname"] = json!(GROUP);
        let body = json!({"servicegroup_servicegroupmember_binding": fields});
        let path = "config/servicegroup_servicegroupmember_binding";
        self.admin.call(Method::PUT, path, Some(&body)).await
    }

    async fn change_once(&self) -> Result<Repetition> {
        let (p, q) = (self.new_member.addr, self.changed.addr);
        let called = Instant::now();
        self.put_member(json!({"ip": p.ip().to_string(), "port": p.port(), "weight": HEAVY}))
            .await
            .context("binding the new member")?;
        let bind = Started {
            api: called.elapsed(),
            served: self
                .new_member
                .first_request_since(called, SERVED_WITHIN)
                .await?,
        };
        tokio::time::sleep(SETTLE).await;

        let called = Instant::now();
        self.put_member(json!({"ip": q.ip().to_string(), "port": q.port(), "weight": HEAVY}))
            .await
            .context("changing a member's weight")?;
        let weight = Started {
            api: called.elapsed(),
            served: self
                .changed
                .first_request_since(called, SERVED_WITHIN)
                .await?,
        };
        tokio::time::sleep(SETTLE).await;

        let called = Instant::now();
        let body = json!({"servicegroup": {
            "servicegroupname": GROUP, "ip": q.ip().to_string(), "port": q.port(), "graceful": "YES",
        }});
        self.admin
            .call(
                Method::POST,
                "config/servicegroup?action=disable",
                Some(&body),
            )
            .await
            .context("disabling a member")?;
        let answered = Instant::now();
        let disable_api = answered - called;
        tokio::time::sleep(WATCH).await;
        let mut after_stop = self.changed.requests_since(answered);

        let called = Instant::now();
        let path = format!(
            "config/servicegroup_servicegroupmember_binding/{GROUP}?args=ip:{},port:{}",
            p.ip(),
            p.port()
        );
        self.admin
            .call(Method::DELETE, &path, None)
            .await
            .context("unbinding the new member")?;
        let answered = Instant::now();
        let unbind_api = answered - called;
        tokio::time::sleep(WATCH).await;
        after_stop += self.new_member.requests_since(answered);

        self.put_member(
            json!({"ip": q.ip().to_string(), "port": q.port(), "weight": 1, "state": "ENABLED"}),
        )
        .await
        .context("putting the changed member back")?;
        tokio::time::sleep(SETTLE).await;
        Ok(Repetition {
            bind,
            weight,
            disable_api,
            unbind_api,
            after_stop,
        })
    }
}
