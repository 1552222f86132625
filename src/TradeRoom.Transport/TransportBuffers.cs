using System.Buffers;
using Microsoft.AspNetCore.Connections;

namespace TradeRoom.Transport;

/// <summary>
/// Kestrel's connection buffers (the transport's input and output pipes, TLS included): its 4 KiB segments from a
/// pool of their own that keeps at most <see cref="SegmentsKept"/> of them (4 MiB), larger buffers from the shared
/// <see cref="ArrayPool{T}"/>.
/// <list type="bullet">
/// <item>Not Kestrel's own pinned block pool: it keeps every block it ever handed out and, once idle, gives back 5% of
/// them every 10 s; a wave of hostile sockets that each filled their input pipe (about 1 MiB: a client that pings and
/// never reads blocks the pong, so the receive loop stops reading) left it that large for many minutes after the
/// sockets were freed. Here what a freed connection held beyond the kept segments becomes garbage, which
/// <see cref="SocketSweeper"/> collects after a wave of closes.</item>
/// <item>Not the shared pool for the segments either: it keeps 32 arrays of a size per core, and every frame a client
/// sends (a pong every ping-interval from each of 10,000 sockets) takes a segment until it is read. The sweeper pings
/// the sockets due at each tick together, so their pongs arrive together, and the shared pool ran dry at each tick:
/// 1.8 MB/s of new 4 KiB arrays in a fan-out run, most of the server's allocation, and a gen-0 collection (a pause of
/// every thread) at each tick (bench/analysis.md).</item>
/// </list>
/// </summary>
public sealed class TransportBuffers : IMemoryPoolFactory<byte>
{
    private readonly SegmentPool _pool = new();

    public MemoryPool<byte> Create(MemoryPoolOptions? options = null) => _pool;

    /// <summary>The segments kept for reuse at most: 4 MiB of 4 KiB segments.</summary>
    public const int SegmentsKept = 1024;

    /// <summary>The size of a pipe's segment (<c>PipeOptions.MinimumSegmentSize</c>'s default, which Kestrel keeps).</summary>
    public const int SegmentSize = 4096;

    /// <summary>
    /// Segments from a stack of at most <see cref="SegmentsKept"/> kept ones (new when it is empty), back to it when
    /// there is room (else garbage); larger buffers from and back to the shared pool.
    /// </summary>
    internal sealed class SegmentPool : MemoryPool<byte>
    {
        private readonly Lock _gate = new();
        private readonly byte[][] _kept = new byte[SegmentsKept][];
        private int _count;

        public override int MaxBufferSize => Array.MaxLength;

        public override IMemoryOwner<byte> Rent(int minBufferSize = -1)
        {
            if (minBufferSize > SegmentSize)
                return new Lease(this, ArrayPool<byte>.Shared.Rent(minBufferSize));
            byte[]? segment = null;
            lock (_gate)
            {
                if (_count > 0)
                {
                    segment = _kept[--_count];
                    _kept[_count] = null!;
                }
            }
            return new Lease(this, segment ?? GC.AllocateUninitializedArray<byte>(SegmentSize));
        }

        /// <summary>Takes <paramref name="array"/> back: a segment is kept if there is room, anything larger goes back to the shared pool.</summary>
        public void Return(byte[] array)
        {
            if (array.Length != SegmentSize)
            {
                ArrayPool<byte>.Shared.Return(array);
                return;
            }
            lock (_gate)
            {
                if (_count < SegmentsKept)
                    _kept[_count++] = array;
            }
        }

        protected override void Dispose(bool disposing)
        {
        }
    }

    /// <summary>One buffer lent out; disposing it gives the array back to the pool it came from, once.</summary>
    private sealed class Lease(SegmentPool pool, byte[] array) : IMemoryOwner<byte>
    {
        private byte[]? _array = array;

        public Memory<byte> Memory => _array ?? throw new ObjectDisposedException(nameof(Lease));

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _array, null) is { } returned)
                pool.Return(returned);
        }
    }
}
