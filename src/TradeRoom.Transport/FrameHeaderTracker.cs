namespace TradeRoom.Transport;

/// <summary>
/// Follows RFC 6455 frame boundaries in the bytes a client sends, as they are read, and reports each frame's opcode
/// when its header has arrived. The WebSocket answers pings by itself, so this is where the server sees control
/// frames at all: they count against the connection's message rate like messages do.
/// A frame header is 2 bytes, then 2 or 8 bytes of extended length (length 126 / 127), then a 4-byte mask when the
/// mask bit is set; the payload follows. Any header may be split across reads, and one read may hold many frames.
/// Only the structure is followed: whether a frame is valid is still the WebSocket's to judge.
/// </summary>
internal struct FrameHeaderTracker
{
    private enum Stage
    {
        First,
        Length,
        ExtendedLength,
        Mask,
        Payload,
    }

    private Stage _stage;
    private int _opcode;
    private bool _masked;
    private int _bytesLeft;     // of the extended length or the mask
    private long _length;
    private long _payloadLeft;

    /// <summary>Follows <paramref name="data"/>, calling <paramref name="onFrame"/> with the opcode of each frame whose header completes in it.</summary>
    public void Feed(ReadOnlySpan<byte> data, Action<int> onFrame)
    {
        var i = 0;
        while (i < data.Length)
        {
            switch (_stage)
            {
                case Stage.First:
                    _opcode = data[i++] & 0x0F;
                    _stage = Stage.Length;
                    break;
                case Stage.Length:
                    var b = data[i++];
                    _masked = (b & 0x80) != 0;
                    var length = b & 0x7F;
                    if (length < 126)
                    {
                        _length = length;
                        HeaderLengthKnown(onFrame);
                    }
                    else
                    {
                        (_length, _bytesLeft, _stage) = (0, length == 126 ? 2 : 8, Stage.ExtendedLength);
                    }
                    break;
                case Stage.ExtendedLength:
                    _length = (_length << 8) | data[i++];
                    if (--_bytesLeft == 0)
                    {
                        if (_length < 0)
                            _length = long.MaxValue; // the top bit set: invalid, and the WebSocket refuses it; never loop on it
                        HeaderLengthKnown(onFrame);
                    }
                    break;
                case Stage.Mask:
                    var maskBytes = Math.Min(_bytesLeft, data.Length - i);
                    i += maskBytes;
                    if ((_bytesLeft -= maskBytes) == 0)
                        StartPayload();
                    break;
                case Stage.Payload:
                    var skip = (int)Math.Min(_payloadLeft, data.Length - i);
                    i += skip;
                    if ((_payloadLeft -= skip) == 0)
                        _stage = Stage.First;
                    break;
            }
        }
    }

    private void HeaderLengthKnown(Action<int> onFrame)
    {
        if (_masked)
            (_bytesLeft, _stage) = (4, Stage.Mask);
        else
            StartPayload();
        onFrame(_opcode);
    }

    private void StartPayload()
    {
        _payloadLeft = _length;
        _stage = _length == 0 ? Stage.First : Stage.Payload;
    }
}
