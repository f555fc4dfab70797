using System.Text;

namespace HwGen.Core.Ir;

/// <summary>Prints a graph in HwGen's textual IR (constants are summarised, not dumped).</summary>
public static class Printer
{
    public static string Print(Graph g)
    {
        var sb = new StringBuilder();
        sb.Append($"graph @{g.Name}(").AppendJoin(", ", g.Inputs).AppendLine(") {");
        foreach (var op in g.Ops)
        {
            sb.Append($"  %{op.Output.Name} = {op.Mnemonic}(").AppendJoin(", ", op.Inputs.Select(v => "%" + v.Name)).Append(')');
            var attrs = op.Attributes().ToList();
            if (attrs.Count > 0) sb.Append(" {").AppendJoin(", ", attrs.Select(a => $"{a.Key}={a.Value}")).Append('}');
            sb.Append($" : {op.Output.Type}  // {op.Name}").AppendLine();
        }
        sb.Append("  return ").AppendJoin(", ", g.Outputs.Select(v => "%" + v.Name)).AppendLine().AppendLine("}");
        return sb.ToString();
    }
}
