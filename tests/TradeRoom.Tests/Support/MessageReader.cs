using System.Net.WebSockets;

namespace TradeRoom.Tests.Support;

/// <summary>Reads whole WebSocket messages (reassembling fragments) into a buffer that grows as needed.</summary>
public sealed class MessageReader(WebSocket socket, int initialSize = 16 * 1024)
{
    private byte[] _buffer = new byte[initialSize];

    /// <summary>The last message's bytes are <c>Buffer[0..Count]</c>.</summary>
    public byte[] Buffer => _buffer;

    /// <summary>The next message's type and length; <see cref="WebSocketMessageType.Close"/> (length 0) when the peer closed.</summary>
    public async Task<(WebSocketMessageType Type, int Count)> ReadAsync(CancellationToken cancellationToken = default)
    {
        var count = 0;
        ValueWebSocketReceiveResult result;
        do
        {
            if (count == _buffer.Length)
                Array.Resize(ref _buffer, _buffer.Length * 2);
            result = await socket.ReceiveAsync(_buffer.AsMemory(count), cancellationToken);
            if (result.MessageType == WebSocketMessageType.Close)
                return (WebSocketMessageType.Close, 0);
            count += result.Count;
        } while (!result.EndOfMessage);
        return (result.MessageType, count);
    }

    public ReadOnlyMemory<byte> Message(int count) => _buffer.AsMemory(0, count);
}
