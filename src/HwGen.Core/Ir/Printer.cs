using System.Buffers.Binary;
using System.Security.Cryptography;
using HwGen.Core.Ir.Text;

namespace HwGen.Core.Ir;

/// <summary>
/// Prints a graph in HwGen's textual IR (grammar: Text/HwIr.g4). Printed in full, the output parses back to an equal graph.
/// With <c>elideAbove</c>, every list attribute of more values than that (weights, per-column parameters) is printed as a
/// reference instead, <c>elided&lt;COUNT values, sha256 HASH, [FIRST, ...]&gt;</c>: its count, the first 16 hex digits of the
/// SHA-256 of its values (each as a little-endian IEEE double, in order) and its first <see cref="ElidedHead"/> values. Such
/// text is for people: it does not parse back (a comment at its top says so).
/// </summary>
public static class Printer
{
    /// <summary>Lists longer than this are elided in the model.hwir that <c>hwgen compile</c> writes.</summary>
    public const int DefaultElideAbove = 256;

    /// <summary>Values an elided list shows.</summary>
    public const int ElidedHead = 8;

    public static string Print(Graph g, int? elideAbove = null)
    {
        var w = new StringWriter();
        Write(g, w, elideAbove);
        return w.ToString();
    }

    /// <summary>Writes the graph to <paramref name="w"/> as it goes, list by list, so no large text is held in memory.</summary>
    public static void Write(Graph g, TextWriter w, int? elideAbove = null)
    {
        if (elideAbove is { } n)
            w.Write($"// Lists of more than {n} values are elided: their count, the first 16 hex digits of the SHA-256 of their values " +
                    "(little-endian doubles) and their first values. This text does not parse back; 'hwgen compile --dump-ir DIR' " +
                    "and 'hwgen opt' print the IR in full.\n");
        w.Write($"graph @{g.Name}(");
        w.Write(string.Join(", ", g.Inputs.Select(v => $"%{v.Name}: {Type(v.Type)}")));
        w.Write(") {\n");
        foreach (var op in g.Ops)
        {
            w.Write($"  %{op.Output.Name} = {op.Mnemonic}(");
            w.Write(string.Join(", ", op.Inputs.Select(v => "%" + v.Name)));
            w.Write(')');
            bool first = true;
            foreach (var (key, value) in op.Attributes())
            {
                w.Write(first ? " {" : ", ");
                first = false;
                w.Write(key);
                w.Write('=');
                WriteAttr(w, value, elideAbove);
            }
            if (!first) w.Write('}');
            w.Write($" : {Type(op.Output.Type)} loc({new Attr.Str(op.Name)})\n");
        }
        w.Write("  return ");
        w.Write(string.Join(", ", g.Outputs.Select(v => "%" + v.Name)));
        w.Write("\n}\n");
    }

    static void WriteAttr(TextWriter w, Attr a, int? elideAbove)
    {
        if (a is not Attr.List l)
        {
            w.Write(a.ToString());
            return;
        }
        if (elideAbove is { } n && l.Items.Count > n && Attr.NumbersOf(l) is { } value)
        {
            w.Write($"elided<{l.Items.Count} values, sha256 {Hash(value, l.Items.Count)}, [");
            w.Write(string.Join(", ", Enumerable.Range(0, Math.Min(ElidedHead, l.Items.Count)).Select(i => Attr.Number(value(i)))));
            w.Write(", ...]>");
            return;
        }
        w.Write('[');
        for (int i = 0; i < l.Items.Count; i++)
        {
            if (i > 0) w.Write(", ");
            WriteAttr(w, l.Items[i], elideAbove);
        }
        w.Write(']');
    }

    /// <summary>The first 16 hex digits of the SHA-256 of <paramref name="count"/> numbers as little-endian doubles.</summary>
    static string Hash(Func<int, double> value, int count)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = new byte[8 * 8192];
        for (int start = 0; start < count; start += 8192)
        {
            int m = Math.Min(8192, count - start);
            for (int i = 0; i < m; i++) BinaryPrimitives.WriteDoubleLittleEndian(buffer.AsSpan(8 * i), value(start + i));
            sha.AppendData(buffer, 0, 8 * m);
        }
        return Convert.ToHexStringLower(sha.GetHashAndReset())[..16];
    }

    public static string Type(TensorType t)
    {
        var s = $"{t.Elem.Name()}[{string.Join(",", t.Shape)}]";
        if (t.Quant is not { } q) return s;
        return q.PerChannel || q.Axis >= 0
            ? $"{s} q<axis={q.Axis}, {Attr.Of(q.Scales)}, {Attr.Of(q.ZeroPoints)}>"
            : $"{s} q<{Attr.Number(q.Scale)}, {q.ZeroPoint}>";
    }
}
