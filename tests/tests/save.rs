//! `nsconfig save` edits the file that is there: after a member was added through the admin
//! API, the saved file keeps every comment and its layout, holds the new member, and reads
//! back (`ballast check`, a restart) as the running config.

use std::net::SocketAddr;

use ballast_tests::nitro::Nitro;
use ballast_tests::{BALLAST_SECTION, Backend, Binary, Net, get};
use http::StatusCode;
use serde_json::json;

/// The `ballast` binary cargo built for this test run.
const BALLAST: Binary = Binary::new(env!("CARGO_BIN_EXE_ballast"));

const PASSWORD: &str = "Pw-save-test-91c2";

/// A config written by hand: comments above sections, after values and inside the member list.
fn commented(admin: SocketAddr, vserver: SocketAddr, member: SocketAddr) -> String {
    format!(
        r#"# Ballast for the shop front.
# Owner: the web team.
{BALLAST_SECTION}
# The API is on loopback only.
[admin]
listen = "{admin}"
passwordfile = "admin.pass"   # never inline

# --- backends ---
[[servicegroup]]
servicegroupname = "web-pool"
servicetype = "HTTP"
members = [
    {{ ip = "{ip}", port = {port} }},   # the first app server
]

# --- front ---
[[lbvserver]]
name = "web"
servicetype = "HTTP"
ipv46 = "{vip}"
port = {vport}   # the public port
servicegroupname = "web-pool"
# end of file
"#,
        ip = member.ip(),
        port = member.port(),
        vip = vserver.ip(),
        vport = vserver.port(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn save_keeps_every_comment_and_adds_the_new_member() {
    let net = Net::new();
    let a = Backend::start(net.free_addr(1), "a").await;
    let b = Backend::start(net.free_addr(2), "b").await;
    let (admin, vserver) = (net.free_addr(250), net.free_addr(100));
    let original = commented(admin, vserver, a.addr());
    let mut ballast = BALLAST
        .start_with_files(
            &original,
            &[("admin.pass", format!("{PASSWORD}\n").as_bytes())],
        )
        .await;
    let nitro = Nitro::new(admin, "nsroot", PASSWORD);

    let added = json!({"servicegroup_servicegroupmember_binding": {"servicegroupname": "web-pool", "ip": b.addr().ip().to_string(), "port": b.addr().port(), "weight": 2}});
    let reply = nitro
        .put("config/servicegroup_servicegroupmember_binding", added)
        .await;
    assert!(reply.status.is_success(), "{:?}", reply.body);
    let saved = nitro
        .post("config/nsconfig?action=save", json!({"nsconfig": {}}))
        .await;
    assert_eq!(saved.status, StatusCode::OK, "{:?}", saved.body);

    let text = std::fs::read_to_string(ballast.config_path()).expect("read the saved file");
    let comments: Vec<&str> = original
        .lines()
        .filter_map(|line| line.find('#').map(|at| &line[at..]))
        .collect();
    assert_eq!(comments.len(), 9, "the test file's comments: {comments:?}");
    for comment in &comments {
        assert!(text.contains(comment), "`{comment}` is gone:\n{text}");
    }
    // Lines nothing changed are byte for byte what they were.
    for line in original.lines().filter(|line| line.contains("   # ")) {
        assert!(text.contains(line), "`{line}` changed:\n{text}");
    }
    let new_member = format!("ip = \"{}\", port = {}", b.addr().ip(), b.addr().port());
    assert!(
        text.contains(&new_member),
        "the new member is not in the file:\n{text}"
    );
    let members_at = text.find("members = [").expect("the member list");
    let old_member_at = text
        .find("# the first app server")
        .expect("the old member's comment");
    let new_member_at = text.find(&new_member).expect("the new member");
    assert!(
        members_at < old_member_at && old_member_at < new_member_at,
        "the new member is not added to the list as it is laid out:\n{text}"
    );

    // The saved file is a valid config, and a restart from it serves both members.
    let (code, stdout, stderr) = BALLAST.check_file(ballast.config_path());
    assert_eq!(code, 0, "stdout:\n{stdout}\nstderr:\n{stderr}");
    ballast.terminate().await;
    let restarted = BALLAST
        .start_with_files(&text, &[("admin.pass", format!("{PASSWORD}\n").as_bytes())])
        .await;
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..6 {
        let reply = get(vserver, "/")
            .await
            .expect("GET through the restarted Ballast");
        seen.insert(reply.backend().unwrap_or_default().to_owned());
    }
    assert_eq!(seen.into_iter().collect::<Vec<_>>(), ["a", "b"]);
    drop(restarted);
}
