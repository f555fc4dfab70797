namespace HwGen.Core;

/// <summary>
/// The one error type the compiler reports to users: a single line naming the file, the node (where
/// there is one) and the reason. The CLI prints <see cref="Exception.Message"/> and exits non-zero;
/// anything else escaping is a compiler bug.
/// </summary>
public sealed class HwGenException(string message) : Exception(OneLine(message))
{
    /// <summary>The message with control characters (a newline in a name read from a file, say) escaped, so it stays one line.</summary>
    static string OneLine(string message) =>
        message.Any(char.IsControl) ? string.Concat(message.Select(c => char.IsControl(c) ? $"\\x{(int)c:x2}" : c.ToString())) : message;

    public static HwGenException At(string? file, string? node, string reason)
    {
        var where = (file, node) switch
        {
            (null, null) => "",
            (not null, null) => $"{file}: ",
            (null, not null) => $"node '{node}': ",
            _ => $"{file}: node '{node}': ",
        };
        return new HwGenException(where + reason);
    }
}
