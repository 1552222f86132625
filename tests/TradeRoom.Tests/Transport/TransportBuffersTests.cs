using System.Buffers;
using System.Runtime.InteropServices;
using TradeRoom.Transport;

namespace TradeRoom.Tests.Transport;

/// <summary>
/// <see cref="TransportBuffers"/>, the pool of Kestrel's pipe segments: a segment given back is lent again, at most
/// <see cref="TransportBuffers.SegmentsKept"/> are kept, larger buffers are not kept, and a lease gives its array back once.
/// </summary>
public sealed class TransportBuffersTests
{
    private readonly MemoryPool<byte> _pool = new TransportBuffers().Create();

    private static byte[] ArrayOf(IMemoryOwner<byte> lease) =>
        MemoryMarshal.TryGetArray<byte>(lease.Memory, out var segment) ? segment.Array! : throw new InvalidOperationException("not an array");

    [Theory]
    [InlineData(-1)]
    [InlineData(1)]
    [InlineData(2048)]
    [InlineData(4096)]
    public void A_segment_given_back_is_lent_again_whatever_smaller_size_was_asked(int size)
    {
        var first = _pool.Rent(size);
        var array = ArrayOf(first);
        Assert.Equal(TransportBuffers.SegmentSize, array.Length);
        first.Dispose();

        using var second = _pool.Rent(size);
        Assert.Same(array, ArrayOf(second));
    }

    [Fact]
    public void At_most_SegmentsKept_segments_are_kept_the_rest_given_back_become_garbage()
    {
        var leases = Enumerable.Range(0, TransportBuffers.SegmentsKept + 10).Select(_ => _pool.Rent()).ToList();
        var arrays = leases.Select(ArrayOf).ToHashSet(ReferenceEqualityComparer.Instance);
        Assert.Equal(leases.Count, arrays.Count); // all different while lent
        foreach (var lease in leases)
            lease.Dispose();

        var again = Enumerable.Range(0, TransportBuffers.SegmentsKept + 10).Select(_ => ArrayOf(_pool.Rent())).ToList();
        Assert.Equal(TransportBuffers.SegmentsKept, again.Count(arrays.Contains)); // the kept ones, lent again
        Assert.Equal(10, again.Count(a => !arrays.Contains(a)));                   // then new ones
    }

    [Fact]
    public void A_buffer_larger_than_a_segment_is_at_least_the_size_asked_and_not_kept_as_a_segment()
    {
        var large = _pool.Rent(TransportBuffers.SegmentSize + 1);
        var array = ArrayOf(large);
        Assert.True(array.Length > TransportBuffers.SegmentSize);
        large.Dispose();

        using var segment = _pool.Rent();
        Assert.NotSame(array, ArrayOf(segment));
        Assert.Equal(TransportBuffers.SegmentSize, ArrayOf(segment).Length);
    }

    [Fact]
    public void Disposing_a_lease_twice_gives_its_segment_back_once()
    {
        var lease = _pool.Rent();
        var array = ArrayOf(lease);
        lease.Dispose();
        lease.Dispose();
        Assert.Throws<ObjectDisposedException>(() => lease.Memory);

        using var first = _pool.Rent();
        using var second = _pool.Rent();
        Assert.Same(array, ArrayOf(first));
        Assert.NotSame(array, ArrayOf(second)); // not lent to two at once
    }
}
