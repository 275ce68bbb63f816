//! The typed member operations against a running writer (no vserver, so nothing listens):
//! what each one tells its caller, and which members outlive a save and a reload.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use arc_swap::ArcSwap;
use serde_json::json;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::*;
use crate::member::MemberStatus;
use crate::snapshot::Snapshot;

const POOL: &str = r#"
[[servicegroup]]
servicegroupname = "pool"
servicetype = "HTTP"
members = [{ ip = "127.0.0.2", port = 80 }]
"#;

fn config(text: &str) -> Config {
    crate::config::validate::from_toml(text, Path::new(".")).expect("a valid test config")
}

fn addr(text: &str) -> SocketAddr {
    text.parse().expect("a test address")
}

fn mark(vm: &str) -> AutoscaleMark {
    AutoscaleMark {
        vm_id: vm.to_owned(),
        group: "scale".to_owned(),
    }
}

struct Running {
    writer: ConfigWriter,
    snapshot: Arc<ArcSwap<Snapshot>>,
}

impl Running {
    async fn start(text: &str) -> Running {
        let snapshot = Arc::new(ArcSwap::from_pointee(Snapshot::empty()));
        let writer = ConfigWriter::start(
            snapshot.clone(),
            ".".into(),
            TaskTracker::new(),
            CancellationToken::new(),
        );
        writer.apply(config(text)).await.expect("applied");
        Running { writer, snapshot }
    }

    /// (address, VM id, protected) of each member of `pool`.
    fn pool(&self) -> Vec<(SocketAddr, Option<String>, bool)> {
        let members = self.snapshot.load().members_of("pool");
        let view = |m: &crate::member_view::MemberView| {
            let vm = m.autoscale.as_ref().map(|mark| mark.vm_id.clone());
            (m.addr, vm, m.scale_in_protection)
        };
        members.iter().map(view).collect()
    }
}

#[tokio::test]
async fn binding_a_bound_member_is_already_bound_and_a_bad_weight_is_invalid() {
    let running = Running::start(POOL).await;
    let writer = &running.writer;
    let new = addr("127.0.0.3:80");
    writer
        .bind_member("pool", new, MemberBinding::default())
        .await
        .expect("bound");
    let again = writer
        .bind_member("pool", new, MemberBinding::default())
        .await;
    assert!(
        matches!(&again, Err(MemberOpError::AlreadyBound { group, addr }) if group == "pool" && *addr == new),
        "{again:?}"
    );
    let heavy = MemberBinding {
        weight: 0,
        ..MemberBinding::default()
    };
    match writer
        .bind_member("pool", addr("127.0.0.4:80"), heavy)
        .await
    {
        Err(MemberOpError::Invalid(invalid)) => {
            let problems: Vec<String> = invalid.problems.iter().map(ToString::to_string).collect();
            assert_eq!(
                problems,
                ["servicegroup `pool`.members[2].weight: expected 1..=100, got 0"]
            );
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
    let ghost = writer
        .bind_member("ghost", new, MemberBinding::default())
        .await;
    assert!(
        matches!(&ghost, Err(MemberOpError::NoGroup(name)) if name == "ghost"),
        "{ghost:?}"
    );
    assert_eq!(
        running.pool(),
        [(addr("127.0.0.2:80"), None, false), (new, None, false)],
        "only the good bind changed the config"
    );
}

#[tokio::test]
async fn unbinding_or_draining_an_unknown_member_is_not_bound() {
    let running = Running::start(POOL).await;
    let writer = &running.writer;
    let unknown = addr("127.0.0.9:80");
    for result in [
        writer.unbind_member("pool", unknown).await,
        writer.disable_member("pool", unknown).await,
    ] {
        assert!(
            matches!(&result, Err(MemberOpError::NotBound { addr, .. }) if *addr == unknown),
            "{result:?}"
        );
    }

    let known = addr("127.0.0.2:80");
    let status = || running.snapshot.load().members_of("pool")[0].status;
    writer.disable_member("pool", known).await.expect("drained");
    assert_eq!(
        status(),
        MemberStatus::OutOfService,
        "bound, taking nothing"
    );
    writer.enable_member("pool", known).await.expect("enabled");
    assert_eq!(status(), MemberStatus::Up);
    writer.unbind_member("pool", known).await.expect("unbound");
    assert_eq!(running.pool(), []);
}

#[tokio::test]
async fn save_leaves_autoscaled_members_out_and_adds_no_key() {
    let running = Running::start(POOL).await;
    let writer = &running.writer;
    let autoscaled = addr("127.0.0.5:80");
    let binding = MemberBinding {
        weight: 3,
        ..MemberBinding::autoscaled(mark("vm-5"))
    };
    writer
        .bind_member("pool", autoscaled, binding)
        .await
        .expect("bound");
    writer
        .set_scale_in_protection("pool", autoscaled, true)
        .await
        .expect("protected");
    let dir = std::env::temp_dir().join(format!("ballast-members-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("saved.toml");
    writer.save(path.clone()).await.expect("saved");
    let saved = std::fs::read_to_string(&path).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();

    assert_eq!(config(&saved).to_file(), config(POOL).to_file(), "{saved}");
    assert!(!saved.contains("127.0.0.5"), "{saved}");
    // The running config still has it.
    assert_eq!(
        running.pool(),
        [
            (addr("127.0.0.2:80"), None, false),
            (autoscaled, Some("vm-5".to_owned()), true)
        ]
    );
}

#[test]
fn no_file_can_set_the_mark_or_the_protection() {
    for key in ["autoscale", "scale_in_protection"] {
        let text = POOL.replace("port = 80 }", &format!("port = 80, {key} = true }}"));
        let problems = match crate::config::validate::from_toml(&text, Path::new(".")) {
            Ok(_) => panic!("{key} was accepted"),
            Err(error) => error.problems,
        };
        let problems: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(
            problems,
            [format!(
                "servicegroup[0].members[0].{key}: unknown field `{key}`, expected one of `ip`, `port`, `weight`, `state`"
            )]
        );
    }
}

#[tokio::test]
async fn a_reload_keeps_autoscaled_members_unless_the_file_lists_them() {
    let running = Running::start(POOL).await;
    let writer = &running.writer;
    let autoscaled = addr("127.0.0.5:80");
    writer
        .bind_member("pool", autoscaled, MemberBinding::autoscaled(mark("vm-5")))
        .await
        .expect("bound");
    writer
        .set_scale_in_protection("pool", autoscaled, true)
        .await
        .expect("protected");

    // A new file: another static member. The autoscaled one stays, protection and all.
    let next = POOL.replace("127.0.0.2", "127.0.0.6");
    writer.apply(config(&next)).await.expect("applied");
    assert_eq!(
        running.pool(),
        [
            (addr("127.0.0.6:80"), None, false),
            (autoscaled, Some("vm-5".to_owned()), true)
        ]
    );

    // A file that lists the address itself owns it from now on.
    let listed = POOL.replace(
        r#"{ ip = "127.0.0.2", port = 80 }"#,
        r#"{ ip = "127.0.0.2", port = 80 }, { ip = "127.0.0.5", port = 80 }"#,
    );
    writer.apply(config(&listed)).await.expect("applied");
    assert_eq!(
        running.pool(),
        [
            (addr("127.0.0.2:80"), None, false),
            (autoscaled, None, false)
        ]
    );

    // Without its servicegroup, an autoscaled member goes too.
    writer
        .bind_member(
            "pool",
            addr("127.0.0.7:80"),
            MemberBinding::autoscaled(mark("vm-7")),
        )
        .await
        .expect("bound");
    let other = POOL.replace("\"pool\"", "\"other\"");
    writer.apply(config(&other)).await.expect("applied");
    assert_eq!(running.pool(), []);
}

#[tokio::test]
async fn an_api_edit_of_the_servicegroup_keeps_the_runtime_state() {
    let running = Running::start(POOL).await;
    let writer = &running.writer;
    let autoscaled = addr("127.0.0.5:80");
    writer
        .bind_member("pool", autoscaled, MemberBinding::autoscaled(mark("vm-5")))
        .await
        .expect("bound");
    writer
        .set_scale_in_protection("pool", addr("127.0.0.2:80"), true)
        .await
        .expect("protected");
    let servicegroup = crate::api::resources::find("servicegroup").expect("a resource");
    writer
        .edit(move |file| {
            servicegroup.update(
                file,
                json!({"servicegroupname": "pool", "svrtimeout": "5s"}),
            )
        })
        .await
        .expect("edited");
    assert_eq!(
        running.pool(),
        [
            (addr("127.0.0.2:80"), None, true),
            (autoscaled, Some("vm-5".to_owned()), false)
        ]
    );
}

#[tokio::test]
async fn config_changes_yield_each_applied_config() {
    let running = Running::start(POOL).await;
    let mut configs = running.writer.config_changes();
    let members = |config: &Config| config.service_group("pool").map(|g| g.members.len());
    assert_eq!(members(&configs.borrow_and_update()), Some(1));
    running
        .writer
        .bind_member("pool", addr("127.0.0.3:80"), MemberBinding::default())
        .await
        .expect("bound");
    configs.changed().await.expect("the writer runs");
    assert_eq!(members(&configs.borrow_and_update()), Some(2));
    // A rejected change publishes nothing.
    let _ = running
        .writer
        .bind_member("pool", addr("127.0.0.3:80"), MemberBinding::default())
        .await;
    assert!(!configs.has_changed().expect("the writer runs"));
}
