using System.Globalization;

namespace TradeRoom.LoadTest;

/// <summary>
/// Walks a mode's command-line options (<c>--name value</c>) for the modes that parse their own (--persist, --attack,
/// --failover): the current option's <see cref="Name"/>, then its value read as text or a number, each refused with
/// an <see cref="ArgumentException"/> naming the option.
/// </summary>
internal sealed class ArgReader(string[] args)
{
    private int _index = -1;

    public string Name { get; private set; } = "";

    /// <summary>Moves to the next option; false past the last.</summary>
    public bool Next()
    {
        if (++_index >= args.Length)
            return false;
        Name = args[_index];
        return true;
    }

    public string Value() => _index + 1 < args.Length ? args[++_index] : throw new ArgumentException($"{Name} needs a value");

    public double Positive() => double.TryParse(Value(), NumberStyles.Float, CultureInfo.InvariantCulture, out var v) && v > 0
        ? v : throw new ArgumentException($"{Name} needs a number > 0");

    public double NonNegative() => double.TryParse(Value(), NumberStyles.Float, CultureInfo.InvariantCulture, out var v) && v >= 0
        ? v : throw new ArgumentException($"{Name} needs a number >= 0");

    public int Int(int min) => int.TryParse(Value(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) && v >= min
        ? v : throw new ArgumentException($"{Name} needs a whole number >= {min}");
}
