//! Entry point: the CNI plugin when `CNI_COMMAND` is set, otherwise the command line. The only
//! place that prints errors and chooses the exit code.

use std::io::Write;
use std::process::ExitCode;

use plexus::cni::env::{Request, read_stdin};
use plexus::cni::version::{self, Version};
use plexus::delegate::exec::ProcessExecutor;
use plexus::error::Error;
use plexus::plugin::{CNI_VARIABLES, host_path};

fn main() -> ExitCode {
    let argv0 = std::env::args_os().next().unwrap_or_default();
    let name = std::path::Path::new(&argv0)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_string();
    if let Some(plugin) = plexus::builtin::standalone_plugin(&name) {
        return builtin_main(plugin);
    }
    // A runtime's call even without CNI_COMMAND: it gets a CNI error object, not CLI usage.
    if CNI_VARIABLES.iter().any(|v| std::env::var_os(v).is_some()) {
        return cni_main();
    }
    plexus::cli::main()
}

fn print_json(v: &serde_json::Value) {
    let mut out = std::io::stdout().lock();
    let _ = serde_json::to_writer(&mut out, v);
    let _ = out.write_all(b"\n");
    let _ = out.flush();
}

/// The version to answer errors in: the runtime's, if it can be read and is supported.
fn error_version(stdin: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(stdin)
        .ok()
        .and_then(|v| v.get("cniVersion")?.as_str().map(str::to_string))
        .filter(|v| Version::parse_supported(v).is_some())
        .unwrap_or_else(|| version::LATEST.to_string())
}

/// stdin, read once and bounded: its bytes (none when it could not be read) and why not.
fn read_input() -> (Vec<u8>, Option<plexus::cni::env::StdinError>) {
    match read_stdin(std::io::stdin().lock()) {
        Ok(bytes) => (bytes, None),
        Err(e) => (Vec::new(), Some(e)),
    }
}

fn cni_main() -> ExitCode {
    let (stdin, stdin_error) = read_input();
    match plexus::plugin::run(|k| std::env::var(k).ok(), &stdin, stdin_error) {
        Ok(Some(v)) => {
            print_json(&v);
            ExitCode::SUCCESS
        }
        Ok(None) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(code = e.code(), error = %e, "CNI call failed");
            // Worked out only when there is an error to answer.
            let obj = e.to_object(&error_version(&stdin), error_context().as_deref());
            print_json(&serde_json::to_value(obj).unwrap_or_default());
            ExitCode::FAILURE
        }
    }
}

/// "pod NS/NAME, container ID" from the environment, for error messages.
fn error_context() -> Option<String> {
    let args = std::env::var("CNI_ARGS").unwrap_or_default();
    let get = |k: &str| {
        args.split(';')
            .find_map(|kv| kv.strip_prefix(k)?.strip_prefix('='))
            .filter(|v| !v.is_empty())
            .map(plexus::cni::env::truncate)
    };
    let id = std::env::var("CNI_CONTAINERID")
        .ok()
        .filter(|s| !s.is_empty());
    let id = id.map(|i| plexus::cni::env::truncate(&i));
    match (get("K8S_POD_NAMESPACE"), get("K8S_POD_NAME"), id) {
        (Some(ns), Some(n), Some(id)) => Some(format!("pod {ns}/{n} (container {id})")),
        (Some(ns), Some(n), None) => Some(format!("pod {ns}/{n}")),
        (_, _, Some(id)) => Some(format!("container {id}")),
        _ => None,
    }
}

/// The multi-call binary: invoked as `macvlan`, `ipvlan` or `vlan`, plexus is that CNI plugin.
fn builtin_main(plugin: plexus::builtin::Plugin) -> ExitCode {
    let (stdin, stdin_error) = read_input();
    let fail = |code: u32, msg: String| {
        let obj = plexus::cni::error::ErrorObject {
            cni_version: error_version(&stdin),
            code,
            msg,
            details: String::new(),
        };
        print_json(&serde_json::to_value(obj).unwrap_or_default());
        ExitCode::FAILURE
    };
    let req = match Request::from_env(|k| std::env::var(k).ok()) {
        Ok(r) => r,
        Err(e) => {
            let e = Error::from(e);
            return fail(e.code(), e.to_string());
        }
    };
    // The same codes as the meta-plugin: an oversized config is an invalid config.
    if let Some(e) = stdin_error {
        let e = Error::from(e);
        return fail(e.code(), e.to_string());
    }
    let host_path = host_path();
    let exec = ProcessExecutor::new(
        req.path.clone(),
        host_path,
        std::time::Duration::from_secs(60),
    );
    let args = req.args_string();
    let inv = plexus::delegate::Invocation {
        command: req.command,
        container_id: &req.container_id,
        netns: &req.netns,
        ifname: &req.ifname,
        args: &args,
        cancel: None,
    };
    match plexus::builtin::standalone(plugin, &inv, &stdin, &exec) {
        Ok(out) => {
            if !out.is_empty() {
                let mut o = std::io::stdout().lock();
                let _ = o.write_all(&out);
                let _ = o.write_all(b"\n");
                let _ = o.flush();
            }
            ExitCode::SUCCESS
        }
        Err(e) => fail(e.code(), e.to_string()),
    }
}
