using HwGen.Core.Ir.Text;

namespace HwGen.Core.Ir;

/// <summary>
/// Prints a graph in HwGen's textual IR (grammar: Text/HwIr.g4); the output parses back to an equal graph. With a
/// <see cref="Constants.Writer"/>, every list attribute of more values than its limit (weights, per-column parameters)
/// goes to the writer's binary constants file and prints as a reference to it (<see cref="Constants"/>); the text then
/// parses back with that file beside it.
/// </summary>
public static class Printer
{
    /// <summary>Lists longer than this go to model.consts in the model.hwir that <c>hwgen compile</c> writes.</summary>
    public const int DefaultElideAbove = 256;

    /// <summary>The constants file beside model.hwir.</summary>
    public const string ConstantsFile = "model.consts";

    public static string Print(Graph g, Constants.Writer? constants = null)
    {
        var w = new StringWriter();
        Write(g, w, constants);
        return w.ToString();
    }

    /// <summary>Writes the graph to <paramref name="w"/> as it goes, list by list, so no large text is held in memory.</summary>
    public static void Write(Graph g, TextWriter w, Constants.Writer? constants = null)
    {
        if (constants is not null)
            w.Write($"// Lists of more than {constants.Above} values are in {constants.FileName}, printed as const<...> references " +
                    "(file, byte offset, count, stored type, SHA-256 prefix of the stored bytes, first values). The text parses back " +
                    "with that file beside it ('hwgen opt').\n");
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
                WriteAttr(w, value, constants);
            }
            if (!first) w.Write('}');
            w.Write($" : {Type(op.Output.Type)} loc({new Attr.Str(op.Name)})\n");
        }
        w.Write("  return ");
        w.Write(string.Join(", ", g.Outputs.Select(v => "%" + v.Name)));
        w.Write("\n}\n");
    }

    static void WriteAttr(TextWriter w, Attr a, Constants.Writer? constants)
    {
        if (a is not Attr.List l)
        {
            w.Write(a.ToString());
            return;
        }
        if (constants is not null && l.Items.Count > constants.Above && Attr.NumbersOf(l) is { } value)
        {
            w.Write(constants.Add(value, l.Items.Count));
            return;
        }
        w.Write('[');
        for (int i = 0; i < l.Items.Count; i++)
        {
            if (i > 0) w.Write(", ");
            WriteAttr(w, l.Items[i], constants);
        }
        w.Write(']');
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
