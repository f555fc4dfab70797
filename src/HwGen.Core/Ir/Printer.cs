using System.Text;
using HwGen.Core.Ir.Text;

namespace HwGen.Core.Ir;

/// <summary>Prints a graph in HwGen's textual IR (grammar: Text/HwIr.g4). The output parses back to an equal graph.</summary>
public static class Printer
{
    public static string Print(Graph g)
    {
        var sb = new StringBuilder();
        sb.Append($"graph @{g.Name}(").AppendJoin(", ", g.Inputs.Select(v => $"%{v.Name}: {Type(v.Type)}")).AppendLine(") {");
        foreach (var op in g.Ops)
        {
            sb.Append($"  %{op.Output.Name} = {op.Mnemonic}(").AppendJoin(", ", op.Inputs.Select(v => "%" + v.Name)).Append(')');
            var attrs = op.Attributes().ToList();
            if (attrs.Count > 0) sb.Append(" {").AppendJoin(", ", attrs.Select(a => $"{a.Key}={a.Value}")).Append('}');
            sb.Append($" : {Type(op.Output.Type)} loc({new Attr.Str(op.Name)})").AppendLine();
        }
        sb.Append("  return ").AppendJoin(", ", g.Outputs.Select(v => "%" + v.Name)).AppendLine().AppendLine("}");
        return sb.ToString();
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
