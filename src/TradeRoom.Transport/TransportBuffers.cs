using System.Buffers;
using Microsoft.AspNetCore.Connections;

namespace TradeRoom.Transport;

/// <summary>
/// Kestrel's connection buffers (the transport's input and output pipes, TLS included) from the shared
/// <see cref="ArrayPool{T}"/> rather than Kestrel's own pinned block pool. Kestrel's pool keeps every block it ever
/// handed out and, once idle, gives back 5% of them every 10 s; a wave of hostile sockets that each filled their
/// input pipe (about 1 MiB: a client that pings and never reads blocks the pong, so the receive loop stops reading)
/// left the pool that large for many minutes after the sockets were freed. The shared pool keeps a few arrays per size
/// and core: what a freed connection held becomes garbage, which <see cref="SocketSweeper"/> collects after a wave of closes.
/// </summary>
public sealed class TransportBuffers : IMemoryPoolFactory<byte>
{
    public MemoryPool<byte> Create(MemoryPoolOptions? options = null) => MemoryPool<byte>.Shared;
}
