//! HTTPS: a kube-rs client that trusts the kubeconfig's CA gets through; one that does not is
//! refused at the handshake, before any request reaches the server.

use super::*;

#[test]
fn https_with_the_kubeconfig_ca() {
    let server = TestApiServer::start_https().expect("start https server");
    server.put_pod(json!({"metadata": {"name": "p", "namespace": "ns"}}));
    let dir = TempDir::new();
    assert!(
        server.url().starts_with("https://127.0.0.1:"),
        "{}",
        server.url()
    );
    with_client(&server, &dir, |client| async move {
        let pod = Api::<Pod>::namespaced(client, "ns")
            .get("p")
            .await
            .expect("get pod over https");
        assert_eq!(pod.metadata.name.as_deref(), Some("p"));
    });
    let kubeconfig = std::fs::read_to_string(dir.0.join("kubeconfig")).unwrap_or_default();
    let ca = dir.0.join("kubeconfig.ca.crt");
    assert!(
        kubeconfig.contains(&format!("certificate-authority: \"{}\"", ca.display())),
        "{kubeconfig}"
    );
    assert_eq!(
        std::fs::read_to_string(&ca).ok().as_deref(),
        server.ca_pem(),
        "the CA file is the server's CA"
    );
    assert_eq!(server.count("GET", "/api/v1/namespaces/ns/pods/p"), 1);
    assert_eq!(
        server.requests()[0].authorization,
        format!("Bearer {TOKEN}"),
        "the token travels inside TLS"
    );
}

#[test]
fn https_refuses_a_client_without_the_ca() {
    let server = TestApiServer::start_https().expect("start https server");
    let other = TestApiServer::start_https().expect("start a second https server");
    let dir = TempDir::new();
    // A kubeconfig naming another server's CA: the handshake must fail.
    let path = dir.0.join("kubeconfig");
    other.write_kubeconfig(&path).expect("write kubeconfig");
    let text = std::fs::read_to_string(&path).expect("read kubeconfig");
    std::fs::write(&path, text.replace(&other.url(), &server.url())).expect("rewrite");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let result = runtime.block_on(async {
        let kubeconfig = Kubeconfig::read_from(&path).expect("read kubeconfig");
        let config =
            kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .expect("config from kubeconfig");
        let client = kube::Client::try_from(config).expect("client");
        Api::<Pod>::namespaced(client, "ns").get("p").await
    });
    assert!(result.is_err(), "{result:?}");
    assert!(
        server.requests().is_empty(),
        "no request passed an untrusted handshake: {:?}",
        server.requests()
    );
}
