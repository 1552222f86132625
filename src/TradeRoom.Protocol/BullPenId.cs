using System.Text.Json;

namespace TradeRoom.Protocol;

/// <summary>
/// Rules for bull pen ids: a non-empty string of at most 128 characters with no control or format characters, or an
/// integer taken as its decimal string.
/// </summary>
public static class BullPenId
{
    public const int MaxLength = 128;

    public static bool TryRead(JsonElement element, out string bullPenId, out string error)
    {
        switch (element.ValueKind)
        {
            case JsonValueKind.String when TryGetString(element, out var text):
                return TryValidate(text, out bullPenId, out error);
            case JsonValueKind.Number when element.TryGetInt64(out var number):
                bullPenId = number.ToString(System.Globalization.CultureInfo.InvariantCulture);
                error = "";
                return true;
            default:
                bullPenId = "";
                error = "bullPenId must be a non-empty string or an integer";
                return false;
        }
    }

    private static bool TryGetString(JsonElement element, out string text)
    {
        try
        {
            text = element.GetString()!;
            return true;
        }
        catch (InvalidOperationException)
        {
            // A lone surrogate escape: not text.
            text = "";
            return false;
        }
    }

    public static bool TryValidate(string? candidate, out string bullPenId, out string error)
    {
        bullPenId = candidate ?? "";
        if (string.IsNullOrEmpty(candidate))
        {
            error = "bullPenId must be a non-empty string or an integer";
            return false;
        }
        if (candidate.Length > MaxLength)
        {
            error = $"bullPenId must be at most {MaxLength} characters";
            return false;
        }
        if (TextRules.HasControlOrFormat(candidate))
        {
            // NUL, newlines, bidi overrides, zero-width marks: ids that look like others, or break logs and paths.
            error = "bullPenId must not hold control or format characters (e.g. NUL, newlines, bidi marks, zero-width characters)";
            return false;
        }
        error = "";
        return true;
    }
}
