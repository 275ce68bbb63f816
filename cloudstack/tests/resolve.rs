//! Profile ids by name against the real local cloud (in-process; no VM is deployed, so no
//! `ballast` binary is needed): names become the ids the list calls return, UUIDs pass
//! unchanged, and a name that is missing (or only in another zone) is named in the error.
//! Two objects with one name cannot be configured in the local cloud (its names are unique);
//! that case is tested on `resolve::pick` in `src/resolve.rs`.

use std::time::Duration;

use cloudstack::localcloud::{LocalCloud, LocalCloudConfig};
use cloudstack::{
    ClientConfig, CloudStackClient, ListFilter, ProfileIds, ResolveError, TemplateFilter,
    resolve_profile_ids,
};

const KEY: &str = "admin-key";
const SECRET: &str = "admin-secret";

/// Two zones; `web` is in both, `only-z2` in z2; z2's network has a name of its own.
async fn cloud() -> (LocalCloud, CloudStackClient) {
    let config = LocalCloudConfig::from_toml_str(&format!(
        r#"
        listen = "127.0.0.1:0"
        address_range = "127.201.0.0/24"

        [[apiuser]]
        username = "admin"
        apikey = "{KEY}"
        secretkey = "{SECRET}"

        [[zone]]
        name = "z1"

        [[zone]]
        name = "z2"
        network = "backend-net"

        [[host]]
        name = "h1"
        zone = "z1"
        cpunumber = 2
        cpuspeed = 2000
        memory = 2048

        [[serviceoffering]]
        name = "small"
        cpunumber = 1
        cpuspeed = 1000
        memory = 512

        [[serviceoffering]]
        name = "small-ha"
        cpunumber = 1
        cpuspeed = 1000
        memory = 512
        offerha = true

        [[template]]
        name = "web"
        port = 8000

        [[template]]
        name = "only-z2"
        port = 8000
        zones = ["z2"]
        "#
    ))
    .expect("the test config is valid");
    let cloud = LocalCloud::start(config)
        .await
        .expect("the local cloud starts");
    let client = client(&cloud.endpoint());
    (cloud, client)
}

fn client(endpoint: &str) -> CloudStackClient {
    let mut config = ClientConfig::new(endpoint, KEY, SECRET);
    config.timeout = Duration::from_secs(5);
    config.read_retries = 0;
    CloudStackClient::new(config).expect("valid client config")
}

fn names(zone: &str, template: &str, offering: &str, networks: &[&str]) -> ProfileIds {
    ProfileIds {
        zone: zone.to_owned(),
        template: template.to_owned(),
        service_offering: offering.to_owned(),
        networks: networks.iter().map(|n| (*n).to_owned()).collect(),
    }
}

async fn error(client: &CloudStackClient, ids: ProfileIds) -> String {
    resolve_profile_ids(client, &ids)
        .await
        .expect_err("resolving fails")
        .to_string()
}

#[tokio::test]
async fn names_resolve_to_the_ids_the_list_calls_return() {
    let (_cloud, client) = cloud().await;
    let zones = client.list_zones(&ListFilter::default()).await.unwrap();
    let zone = |name: &str| zones.iter().find(|z| z.name == name).unwrap().id.clone();
    let in_zone = |zone: &str| ListFilter {
        zoneid: Some(zone.to_owned()),
        ..ListFilter::default()
    };
    let z2 = zone("z2");
    let template = client
        .list_templates(TemplateFilter::Executable, &in_zone(&z2))
        .await
        .unwrap()
        .into_iter()
        .find(|t| t.name == "only-z2")
        .unwrap()
        .id;
    let offering = client
        .list_service_offerings(&ListFilter::by_name("small"))
        .await
        .unwrap();
    let network = client.list_networks(&in_zone(&z2)).await.unwrap();
    assert_eq!(network.len(), 1, "{network:?}");

    let resolved = resolve_profile_ids(&client, &names("z2", "only-z2", "small", &["backend-net"]))
        .await
        .expect("every name resolves");
    assert_eq!(
        resolved,
        ProfileIds {
            zone: z2,
            template,
            service_offering: offering
                .iter()
                .find(|o| o.name == "small")
                .unwrap()
                .id
                .clone(),
            networks: vec![network[0].id.clone()],
        }
    );

    // `web` is in both zones: the one of the profile's zone is meant, and it is one template.
    let z1 = resolve_profile_ids(&client, &names("z1", "web", "small-ha", &["z1-guest"]))
        .await
        .expect("every name resolves");
    assert_eq!(z1.zone, zone("z1"));
    let web = client
        .list_templates(TemplateFilter::Executable, &in_zone(&zone("z1")))
        .await
        .unwrap();
    assert_eq!(
        z1.template,
        web.iter().find(|t| t.name == "web").unwrap().id
    );
}

#[tokio::test]
async fn uuids_pass_unchanged_and_names_resolve_in_the_given_zone() {
    let (_cloud, client) = cloud().await;
    // Not objects of this cloud: a UUID is used as written, without a call.
    let uuids = names(
        "0b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d",
        "1c2d3e4f-5061-4b7c-9d8e-0f1a2b3c4d5e",
        "2D3E4F50-6172-4C8D-AE9F-1A2B3C4D5E6F",
        &["3e4f5061-7283-4d9e-bfa0-2b3c4d5e6f70"],
    );
    assert_eq!(resolve_profile_ids(&client, &uuids).await.unwrap(), uuids);

    // A zone by UUID, the rest by name: looked up in that zone.
    let z2 = client.list_zones(&ListFilter::by_name("z2")).await.unwrap()[0]
        .id
        .clone();
    let resolved = resolve_profile_ids(&client, &names(&z2, "only-z2", "small", &[]))
        .await
        .unwrap();
    assert_eq!(resolved.zone, z2);
    assert!(cloudstack::resolve::is_uuid(&resolved.template));
}

#[tokio::test]
async fn an_unknown_name_does_not_resolve_and_is_named_with_its_field() {
    let (_cloud, client) = cloud().await;
    assert_eq!(
        error(&client, names("nowhere", "web", "small", &[])).await,
        r#"zoneid: no zone named "nowhere""#
    );
    // `only-z2` exists, but not in z1.
    assert_eq!(
        error(&client, names("z1", "only-z2", "small", &[])).await,
        r#"templateid: no template named "only-z2""#
    );
    // The server matches a part of a name (`keyword` for networks); a name must match whole.
    assert_eq!(
        error(&client, names("z1", "web", "smal", &[])).await,
        r#"serviceofferingid: no service offering named "smal""#
    );
    assert_eq!(
        error(&client, names("z1", "web", "small", &["z1-guest", "guest"])).await,
        r#"networkids[1]: no network named "guest""#
    );
    assert_eq!(
        error(&client, names("z1", "web", "small", &["backend-net"])).await,
        r#"networkids[0]: no network named "backend-net""#
    );
}

#[tokio::test]
async fn resolve_against_an_unreachable_cloud_is_retryable() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let client = client(&format!("http://127.0.0.1:{port}/client/api"));
    let error = resolve_profile_ids(&client, &names("z1", "web", "small", &[]))
        .await
        .expect_err("nothing listens");
    assert!(matches!(error, ResolveError::Cloud { .. }), "{error:?}");
    assert!(error.is_retryable(), "{error}");
    assert_eq!(error.field(), "zoneid");
    assert!(
        error
            .to_string()
            .starts_with("zoneid: listZones: not sent to"),
        "{error}"
    );
}
