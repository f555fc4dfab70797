using System.CommandLine;
using HwGen.Core;
using HwGen.Reference.NnLut;
using HwGen.Rtl.Engines.NnLut;
using HwGen.Sim;

namespace HwGen.Cli;

/// <summary>
/// 'hwgen unit': one NN-LUT unit on its own, as Verilog with a testbench whose stimulus and expected outputs come
/// from the golden model (every input of an element-wise table; pseudo-random rows for softmax and LayerNorm).
/// </summary>
public static class UnitCommand
{
    public static readonly string[] Kinds = [.. Enum.GetValues<LutFunction>().Select(Functions.Name), "softmax", "layernorm"];

    /// <summary>The unit and its test lane for the given parameters.</summary>
    public static UnitLane Lane(string kind, int entries, double inScale, int inZeroPoint, double outScale, int outZeroPoint, int length)
    {
        LutTables.CheckEntries(entries, null, null);
        string name = $"nnlut_{kind}_{entries}";
        switch (kind)
        {
            case "softmax":
            {
                var u = new SoftmaxRtlUnit(name, SoftmaxUnit.Create(entries, inScale, outScale, outZeroPoint, length));
                return UnitBench.Softmax(u, NnLutBench.RandomRows(length, 16, 1));
            }
            case "layernorm":
            {
                var (gamma, beta) = NnLutBench.LayerNormAffine(length);
                var u = new LayerNormRtlUnit(name, LayerNormUnit.Create(entries, length, inScale, 1e-5, gamma, beta, outScale, outZeroPoint));
                return UnitBench.LayerNorm(u, NnLutBench.RandomRows(length, 16, 1));
            }
        }
        var f = Functions.Parse(kind);
        var table = f switch
        {
            LutFunction.Exp => LutTables.Exp(entries, inScale),
            LutFunction.Reciprocal => LutTables.Reciprocal(entries),
            LutFunction.Rsqrt => LutTables.Rsqrt(entries),
            _ => LutTables.Elementwise(f, entries, inScale, inZeroPoint, outScale, outZeroPoint),
        };
        long lo = -(1L << (table.InBits - 1)), hi = (1L << (table.InBits - 1)) - 1;
        return UnitBench.Pwl(new PwlUnit(name, table), Enumerable.Range(0, (int)(hi - lo + 1)).Select(i => lo + i));
    }

    public static Command Create(TextWriter o)
    {
        var kind = new Argument<string>("kind") { Description = $"the unit: {string.Join(", ", Kinds)}" };
        var entries = new Option<int>("--entries") { Description = "table entries: 8, 16 or 32", DefaultValueFactory = _ => 16 };
        var inScale = new Option<double>("--in-scale") { Description = "input scale (element-wise, exp, softmax, layernorm)", DefaultValueFactory = _ => 1 / 16.0 };
        var inZp = new Option<int>("--in-zero-point") { Description = "input zero point (element-wise)", DefaultValueFactory = _ => 0 };
        var outScale = new Option<double>("--out-scale") { Description = "output scale", DefaultValueFactory = _ => 1 / 16.0 };
        var outZp = new Option<int>("--out-zero-point") { Description = "output zero point", DefaultValueFactory = _ => 0 };
        var length = new Option<int>("--length") { Description = "row length (softmax, layernorm)", DefaultValueFactory = _ => 64 };
        var output = new Option<string>("--output", "-o") { Description = "output directory", Required = true };
        var simulate = new Option<string?>("--simulate") { Description = "then build and run the testbench with verilator or icarus" };
        var cmd = new Command("unit", "Emit one NN-LUT unit with a bit-exact testbench.") { kind, entries, inScale, inZp, outScale, outZp, length, output, simulate };
        cmd.SetAction(pr =>
        {
            var k = pr.GetValue(kind)!.ToLowerInvariant();
            if (!Kinds.Contains(k)) throw new HwGenException($"unknown unit '{k}' (one of {string.Join(", ", Kinds)})");
            var lane = Lane(k, pr.GetValue(entries), pr.GetValue(inScale), pr.GetValue(inZp), pr.GetValue(outScale), pr.GetValue(outZp), pr.GetValue(length));
            var dir = pr.GetValue(output)!;
            Flow.WriteAtomically(dir, tmp => UnitBench.Write(tmp, [lane]));
            o.WriteLine($"wrote {dir}: {lane.Unit.Name} ({lane.Inputs.Count} inputs, {lane.Expected.Count} expected outputs)");
            if (pr.GetValue(simulate) is not { } sim) return 0;
            var r = StatusLine.Run(o, $"simulating {dir} in {sim}", () => Simulation.Run(Simulation.Get(sim), dir, UnitBench.ElementCount([lane])));
            o.WriteLine($"{r.Simulator}: {(r.Passed ? "PASS" : "FAIL")}  {r.Summary}");
            return r.Passed ? 0 : 1;
        });
        return cmd;
    }
}
