using System.Globalization;
using System.Text;

namespace TradeRoom.Protocol;

/// <summary>Rules for text that names things (user ids, room ids) and for client-controlled text written to logs.</summary>
public static class TextRules
{
    /// <summary>
    /// True when <paramref name="text"/> holds a control character (C0, DEL, C1: NUL, newlines, escapes), a format
    /// character (bidi marks and overrides, zero-width characters, the BOM), a line or paragraph separator, or a lone
    /// surrogate: characters that make an id look like another one, or a log line say something else.
    /// </summary>
    public static bool HasControlOrFormat(string text)
    {
        for (var i = 0; i < text.Length; i++)
        {
            if (char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                i++;
                continue;
            }
            switch (CharUnicodeInfo.GetUnicodeCategory(text[i]))
            {
                case UnicodeCategory.Control or UnicodeCategory.Format or UnicodeCategory.Surrogate
                    or UnicodeCategory.LineSeparator or UnicodeCategory.ParagraphSeparator:
                    return true;
            }
        }
        return false;
    }

    /// <summary>
    /// <paramref name="text"/> made safe for one log line: control and format characters escaped as <c>\uXXXX</c>,
    /// cut at <paramref name="max"/> characters with an ellipsis. Null stays null.
    /// </summary>
    public static string? ForLog(string? text, int max = 256)
    {
        if (text is null)
            return null;
        var cut = text.Length > max;
        var source = cut ? text[..max] : text;
        if (!cut && !HasControlOrFormat(source))
            return source;
        var b = new StringBuilder(source.Length + 8);
        for (var i = 0; i < source.Length; i++)
        {
            var c = source[i];
            if (char.IsHighSurrogate(c) && i + 1 < source.Length && char.IsLowSurrogate(source[i + 1]))
            {
                b.Append(c).Append(source[++i]);
                continue;
            }
            if (CharUnicodeInfo.GetUnicodeCategory(c) is UnicodeCategory.Control or UnicodeCategory.Format or UnicodeCategory.Surrogate
                or UnicodeCategory.LineSeparator or UnicodeCategory.ParagraphSeparator)
                b.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
            else
                b.Append(c);
        }
        if (cut)
            b.Append('…');
        return b.ToString();
    }
}
