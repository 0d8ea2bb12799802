//! One listening socket per worker and address, all on the same port
//! (SO_REUSEPORT), so the kernel spreads new connections over the workers
//! without a shared accept queue or lock.
//!
//! # Only this process's workers share the port
//!
//! SO_REUSEPORT lets any process of the same user join the port, and the
//! kernel then splits connections between the processes: a second daemon
//! started by mistake would serve part of the traffic with its own data,
//! and an invalidation sent to one would leave the other serving what it
//! invalidated. So before binding the workers' sockets, each address is
//! *probe-bound* by a socket without SO_REUSEPORT, which the kernel refuses
//! (EADDRINUSE) while any other socket is bound there, SO_REUSEPORT or not,
//! including a wildcard address (`0.0.0.0`) of the same port; the start then
//! fails with a message naming the address. The probe has SO_REUSEADDR, as
//! the workers' sockets do, so connections of a previous run still in
//! TIME_WAIT do not block a restart.
//!
//! The probe is closed before the workers bind, so a daemon started within
//! the same few microseconds could still slip in between; that needs two
//! starts racing, not one operator mistake. The alternatives cost more:
//! asking the kernel which sockets share the port (`/proc/net/tcp` and our
//! own descriptors) reads kernel tables at every start, and dropping
//! SO_REUSEPORT for one shared socket would give up the per-worker accept
//! queues the thread model is built on.

use std::io;
use std::net::{SocketAddr, TcpListener};

use socket2::{Domain, Protocol, Socket, Type};

/// Pending-connection backlog per listener.
const BACKLOG: i32 = 1024;

/// Binds one listener per worker on each of `addrs`, which share one port
/// (0: the first address picks a free port and the others take it). Returns
/// the listeners by worker, each worker's in the order of `addrs`.
///
/// When `addrs` came from a host name with several addresses, an address
/// this host cannot bind (IPv6 configured in `/etc/hosts` but not on the
/// interface) is skipped with a warning, as long as another one binds.
pub fn bind_all(addrs: &[SocketAddr], workers: usize) -> io::Result<Vec<Vec<TcpListener>>> {
    let mut by_worker: Vec<Vec<TcpListener>> = (0..workers).map(|_| Vec::new()).collect();
    let mut port = addrs.first().map_or(0, SocketAddr::port);
    for &addr in addrs {
        let addr = SocketAddr::new(addr.ip(), port);
        let bound = match probe(addr) {
            Ok(bound) => bound,
            Err(error) if addrs.len() > 1 && error.kind() == io::ErrorKind::AddrNotAvailable => {
                tracing::warn!(%addr, %error, "not listening on an address this host cannot bind");
                continue;
            }
            Err(error) => return Err(error),
        };
        port = bound.port();
        for listeners in &mut by_worker {
            listeners.push(bind_shared(bound)?);
        }
    }
    if by_worker.iter().all(Vec::is_empty) {
        return Err(io::Error::new(
            io::ErrorKind::AddrNotAvailable,
            "no address to listen on could be bound",
        ));
    }
    Ok(by_worker)
}

/// Binds `addr` without SO_REUSEPORT and lets go of it: fails if another
/// socket is bound there. Returns the address bound (with the port the
/// kernel picked for port 0).
fn probe(addr: SocketAddr) -> io::Result<SocketAddr> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if let Err(error) = socket.bind(&addr.into()) {
        if error.kind() == io::ErrorKind::AddrInUse {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!(
                    "{addr} is in use by another process (another tagcached?); refusing to \
                     share it, since the kernel would split the connections between the two"
                ),
            ));
        }
        return Err(error);
    }
    socket
        .local_addr()?
        .as_socket()
        .ok_or_else(|| io::Error::other("the probe socket has no IP address"))
}

/// A listener that this process's other workers can join on `addr`.
fn bind_shared(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.set_nodelay(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loopback() -> SocketAddr {
        "127.0.0.1:0".parse().expect("addr")
    }

    #[test]
    fn workers_share_a_port_picked_for_them() {
        let listeners = bind_all(&[loopback()], 3).expect("bind");
        assert_eq!(listeners.len(), 3);
        let port = listeners[0][0].local_addr().expect("addr").port();
        assert_ne!(port, 0);
        for worker in &listeners {
            assert_eq!(worker.len(), 1);
            assert_eq!(worker[0].local_addr().expect("addr").port(), port);
        }
    }

    #[test]
    fn every_address_gets_a_listener_per_worker_on_one_port() {
        let addrs = [
            "127.0.0.1:0".parse().expect("v4"),
            "[::1]:0".parse().expect("v6"),
        ];
        // A host without IPv6 on loopback skips ::1 (see the next test).
        let listeners = bind_all(&addrs, 2).expect("bind");
        let port = listeners[0][0].local_addr().expect("addr").port();
        for worker in &listeners {
            let bound: Vec<SocketAddr> = worker
                .iter()
                .map(|l| l.local_addr().expect("addr"))
                .collect();
            assert!(bound.iter().all(|addr| addr.port() == port), "{bound:?}");
            assert_eq!(bound[0].ip(), addrs[0].ip());
            assert!(matches!(bound.len(), 1 | 2), "{bound:?}");
        }
    }

    /// An address of a host name that this host cannot bind is skipped
    /// when another one binds (the documentation address 192.0.2.1 is not
    /// this machine's, so nothing listens on it).
    #[test]
    fn an_address_this_host_cannot_bind_is_skipped_if_another_binds() {
        let addrs = [
            "192.0.2.1:0".parse().expect("TEST-NET-1"),
            "127.0.0.1:0".parse().expect("loopback"),
        ];
        let listeners = bind_all(&addrs, 2).expect("loopback binds");
        for worker in &listeners {
            assert_eq!(worker.len(), 1);
            assert!(worker[0].local_addr().expect("addr").ip().is_loopback());
        }
        let alone = bind_all(&addrs[..1], 1).expect_err("a lone address must bind");
        assert_eq!(alone.kind(), io::ErrorKind::AddrNotAvailable);
    }

    /// Issue 8, item 8: a second daemon joined the first's port.
    #[test]
    fn a_port_another_socket_listens_on_is_refused() {
        let other = TcpListener::bind(loopback()).expect("bind");
        let taken = other.local_addr().expect("addr");
        let error = bind_all(&[taken], 2).expect_err("in use");
        assert_eq!(error.kind(), io::ErrorKind::AddrInUse);
        assert!(
            error.to_string().contains("in use by another process"),
            "{error}"
        );

        // Even a group that allows SO_REUSEPORT, as another daemon's does.
        let group = bind_all(&[loopback()], 2).expect("bind");
        let taken = group[0][0].local_addr().expect("addr");
        let error = bind_all(&[taken], 2).expect_err("in use");
        assert_eq!(error.kind(), io::ErrorKind::AddrInUse);
    }

    #[test]
    fn a_port_is_free_again_once_its_listeners_close() {
        let listeners = bind_all(&[loopback()], 2).expect("bind");
        let addr = listeners[0][0].local_addr().expect("addr");
        drop(listeners);
        bind_all(&[addr], 2).expect("rebind after close");
    }
}
