//! One listening socket per worker, all on the same port (SO_REUSEPORT), so
//! the kernel spreads new connections over the workers without a shared
//! accept queue or lock.

use std::io;
use std::net::{SocketAddr, TcpListener};

use socket2::{Domain, Protocol, Socket, Type};

/// Pending-connection backlog per listener.
const BACKLOG: i32 = 1024;

/// Binds `count` listeners to `addr`. With port 0 the first listener picks a
/// free port and the rest join it.
pub fn bind_all(addr: SocketAddr, count: usize) -> io::Result<Vec<TcpListener>> {
    let first = bind_one(addr)?;
    let port = first.local_addr()?.port();
    let shared = SocketAddr::new(addr.ip(), port);
    let mut listeners = vec![first];
    for _ in 1..count {
        listeners.push(bind_one(shared)?);
    }
    Ok(listeners)
}

fn bind_one(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.set_nodelay(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}
