//! The sandbox ("pause") process of the e2e test's pods: it holds the pod's namespaces open and
//! does nothing else. As PID 1 of its container no signal has a default action, so it blocks
//! SIGTERM and SIGINT and waits for one of them; containerd's StopPodSandbox SIGKILLs it anyway.
#![allow(unsafe_code)] // sigprocmask and sigwait: std has no way to wait for a signal

fn main() {
    // SAFETY: a zeroed sigset_t is a valid argument for sigemptyset, which initialises it; the
    // pointers passed are to this local for the duration of each call.
    let signal = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        let mut sig = 0;
        libc::sigwait(&set, &mut sig);
        sig
    };
    std::process::exit(128 + signal);
}
