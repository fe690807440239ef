//! A CRI client over containerd's unix socket (k8s-cri's generated `runtime.v1` client on tonic),
//! with blocking calls for the test, shaped the way the kubelet makes them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use hyper_util::rt::TokioIo;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use k8s_cri::v1::{
    ListPodSandboxRequest, PodSandboxConfig, PodSandboxMetadata, PodSandboxStatusRequest,
    RemovePodSandboxRequest, RunPodSandboxRequest, StatusRequest, StopPodSandboxRequest,
};
use serde_json::Value;
use tonic::transport::{Channel, Endpoint, Uri};

/// The CRI runtime service of one containerd.
pub struct Cri {
    rt: tokio::runtime::Runtime,
    client: RuntimeServiceClient<Channel>,
}

/// A pod as the kubelet describes it to the runtime.
#[derive(Debug, Clone)]
pub struct PodSpec {
    /// `metadata.namespace`.
    pub namespace: String,
    /// `metadata.name`.
    pub name: String,
    /// `metadata.uid`.
    pub uid: String,
    /// `metadata.annotations` (the kubelet passes them all to the sandbox).
    pub annotations: HashMap<String, String>,
}

impl Cri {
    /// Connects to the socket at `socket`.
    pub fn connect(socket: &Path) -> Cri {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        let path: PathBuf = socket.to_path_buf();
        let channel = rt
            .block_on(
                // The URI is required by tonic but unused: the connector dials the socket.
                Endpoint::from_static("http://[::1]:0").connect_with_connector(tower::service_fn(
                    move |_: Uri| {
                        let path = path.clone();
                        async move {
                            Ok::<_, std::io::Error>(TokioIo::new(
                                tokio::net::UnixStream::connect(path).await?,
                            ))
                        }
                    },
                )),
            )
            .expect("connect to containerd's CRI socket");
        Cri {
            rt,
            client: RuntimeServiceClient::new(channel),
        }
    }

    /// The runtime's `NetworkReady` condition: `(status, reason: message)`.
    pub fn network_ready(&mut self) -> (bool, String) {
        let resp = self
            .rt
            .block_on(self.client.status(StatusRequest { verbose: false }))
            .expect("CRI Status")
            .into_inner();
        resp.status
            .into_iter()
            .flat_map(|s| s.conditions)
            .find(|c| c.r#type == "NetworkReady")
            .map(|c| (c.status, format!("{}: {}", c.reason, c.message)))
            .unwrap_or((false, "no NetworkReady condition".into()))
    }

    /// The CNI configuration containerd has loaded, as its verbose Status reports it (the
    /// `cniconfig` info: every network with its config's source), so a test can wait for a
    /// rewritten conflist to be the one in use.
    pub fn loaded_cni_config(&mut self) -> String {
        let resp = self
            .rt
            .block_on(self.client.status(StatusRequest { verbose: true }))
            .expect("CRI Status")
            .into_inner();
        resp.info.get("cniconfig").cloned().unwrap_or_default()
    }

    /// RunPodSandbox as the kubelet sends it: metadata, the pod's labels that identify it, its
    /// annotations, a hostname, a log directory. The sandbox id, or the runtime's error message.
    pub fn run_pod(&mut self, pod: &PodSpec, log_dir: &Path) -> Result<String, String> {
        let labels = HashMap::from([
            ("io.kubernetes.pod.name".to_string(), pod.name.clone()),
            (
                "io.kubernetes.pod.namespace".to_string(),
                pod.namespace.clone(),
            ),
            ("io.kubernetes.pod.uid".to_string(), pod.uid.clone()),
        ]);
        let config = PodSandboxConfig {
            metadata: Some(PodSandboxMetadata {
                name: pod.name.clone(),
                uid: pod.uid.clone(),
                namespace: pod.namespace.clone(),
                attempt: 0,
            }),
            hostname: pod.name.clone(),
            log_directory: log_dir.display().to_string(),
            labels,
            annotations: pod.annotations.clone(),
            ..Default::default()
        };
        self.rt
            .block_on(self.client.run_pod_sandbox(RunPodSandboxRequest {
                config: Some(config),
                runtime_handler: String::new(),
            }))
            .map(|r| r.into_inner().pod_sandbox_id)
            .map_err(|s| s.message().to_string())
    }

    /// PodSandboxStatus (verbose): the sandbox's network namespace path, from the runtime spec
    /// containerd reports.
    pub fn netns_path(&mut self, id: &str) -> PathBuf {
        let resp = self
            .rt
            .block_on(self.client.pod_sandbox_status(PodSandboxStatusRequest {
                pod_sandbox_id: id.to_string(),
                verbose: true,
            }))
            .expect("CRI PodSandboxStatus")
            .into_inner();
        let info: Value = serde_json::from_str(resp.info.get("info").map_or("{}", |s| s))
            .expect("verbose info is JSON");
        info["runtimeSpec"]["linux"]["namespaces"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|n| n["type"] == "network")
            .and_then(|n| n["path"].as_str())
            .map(PathBuf::from)
            .unwrap_or_else(|| panic!("no network namespace in the sandbox's spec: {info}"))
    }

    /// StopPodSandbox (the runtime's CNI DEL happens here).
    pub fn stop_pod(&mut self, id: &str) {
        self.rt
            .block_on(self.client.stop_pod_sandbox(StopPodSandboxRequest {
                pod_sandbox_id: id.to_string(),
            }))
            .expect("CRI StopPodSandbox");
    }

    /// RemovePodSandbox.
    pub fn remove_pod(&mut self, id: &str) {
        self.rt
            .block_on(self.client.remove_pod_sandbox(RemovePodSandboxRequest {
                pod_sandbox_id: id.to_string(),
            }))
            .expect("CRI RemovePodSandbox");
    }

    /// The ids and pod names of every sandbox the runtime knows.
    pub fn list_pods(&mut self) -> Vec<(String, String)> {
        self.rt
            .block_on(
                self.client
                    .list_pod_sandbox(ListPodSandboxRequest { filter: None }),
            )
            .expect("CRI ListPodSandbox")
            .into_inner()
            .items
            .into_iter()
            .map(|s| (s.id, s.metadata.map(|m| m.name).unwrap_or_default()))
            .collect()
    }
}
