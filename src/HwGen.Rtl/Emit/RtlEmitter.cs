using HwGen.Rtl.Engines;
using HwGen.Rtl.Engines.Dma;
using HwGen.Rtl.Program;

namespace HwGen.Rtl.Emit;

/// <summary>One unit in hwgen_top: its queue and its module. Unit 0 is the DMA (it owns the data port), then the engines;
/// <see cref="TokensIn"/> gathers the tokens the others give it.</summary>
public sealed record UnitInstance(int Index, string Module, string Name, bool IsDma, string TokensIn);

/// <summary>An opcode the controller pushes into a unit's queue.</summary>
public sealed record Dispatch(string Mnemonic, int Opcode, int Unit, string OneHot);

/// <summary>A one-bit wire of the top: its name and expression.</summary>
public sealed record Select(string Name, string Expr);

/// <summary>One scratchpad bank in hwgen_top: the selects of its ports (which unit uses each) and the muxed port signals.</summary>
public sealed record BankValues(int Index, IReadOnlyList<Select> Selects, string WriteEnable, string AddressA, string WriteData, string AddressB);

/// <summary>
/// The values every RTL template of a design may use, computed from the design (templates only place them; Scriban
/// sees the properties in snake_case, e.g. <c>line_bits</c>).
/// </summary>
public sealed record RtlValues(
    string Header, string Model, int Rows, int Cols, int Lines, int LineBytes, int LineBits, int PortBytes, int PortBits,
    int BeatsPerLine, int InstrBeats, int SpadAw, int BankLines, int BankAw, int TokenBits, int EndOpcode, int LoadOpcode, string LbufFromSpad,
    IReadOnlyList<UnitInstance> Units, IReadOnlyList<Dispatch> Dispatches, IReadOnlyList<FieldDecode> DmaDecode,
    IReadOnlyList<BankValues> Banks, string Collision)
{
    public int UnitCount => Units.Count;

    /// <summary>Integer parameters of the design (for the manifest), named as the templates see them.</summary>
    public IEnumerable<KeyValuePair<string, int>> Parameters() =>
        typeof(RtlValues).GetProperties().Where(p => p.PropertyType == typeof(int))
            .Select(p => KeyValuePair.Create(Scriban.Runtime.StandardMemberRenamer.Default(p), (int)p.GetValue(this)!));
}

/// <summary>
/// Emits the Verilog of a design, one file per module: the top, the controller, the unit queue, the DMA and the
/// scratchpad bank, then each engine's modules (<see cref="IDeviceEngine.Render"/>). Prepare computes every width,
/// parameter and name from the design; the templates under templates/ only place them.
/// </summary>
public static class RtlEmitter
{
    public static readonly string[] Modules = ["hwgen_top", "hwgen_controller", "hwgen_queue", "hwgen_dma", "hwgen_spad"];

    /// <summary>Every value the common RTL templates use, computed from the design.</summary>
    public static RtlValues Prepare(Design d)
    {
        var c = d.Config;
        int lineBits = c.LineBytes * 8, portBits = c.PortBytes * 8, lbufBits = c.BeatsPerLine * portBits;
        int n = d.Units.Count;
        string OneHot(int i) => $"{n}'b{new string(Enumerable.Range(0, n).Select(b => b == n - 1 - i ? '1' : '0').ToArray())}";
        // tok_in of unit u: bit f is unit f's token for u (0 for u itself).
        string TokensIn(int u) => "{" + string.Join(", ", Enumerable.Range(0, n).Reverse().Select(f => f == u ? "1'b0" : $"tok{f}[{u}]")) + "}";
        var units = new List<UnitInstance> { new(0, "hwgen_dma", Dma.Unit, true, TokensIn(0)) };
        units.AddRange(d.Engines.Select((e, i) => new UnitInstance(i + 1, e.Module, e.Name, false, TokensIn(i + 1))));
        var dispatches = Dma.Formats.Where(f => f != Dma.EndFormat).Select(f => new Dispatch(f.Mnemonic, f.Opcode, 0, OneHot(0)))
            .Concat(d.Engines.SelectMany((e, i) => e.Formats.Select(f => new Dispatch(f.Mnemonic, f.Opcode, i + 1, OneHot(i + 1))))).ToList();
        int bankAw = Math.Max(1, (int)Math.Ceiling(Math.Log2(Math.Max(2, c.BankLines))));
        string Or(IEnumerable<string> terms, string zero) => terms.Any() ? string.Join(" | ", terms) : zero;
        var banks = Enumerable.Range(0, 2).Select(k =>
        {
            string hi = k == 1 ? "" : "!";
            var selects = units.SelectMany(u => new[]
            {
                new Select($"b{k}_a_u{u.Index}", $"u{u.Index}_a_en && {hi}u{u.Index}_a_hi"),
                new Select($"b{k}_b_u{u.Index}", $"u{u.Index}_b_en && {hi}u{u.Index}_b_hi"),
            }).ToList();
            return new BankValues(k, selects,
                Or(units.Select(u => $"(b{k}_a_u{u.Index} && u{u.Index}_a_we)"), "1'b0"),
                Or(units.Select(u => $"({{BW{{b{k}_a_u{u.Index}}}}} & u{u.Index}_a_off[BW-1:0])"), "{BW{1'b0}}"),
                Or(units.Select(u => $"({{LINE_BITS{{b{k}_a_u{u.Index}}}}} & u{u.Index}_a_wdata)"), "{LINE_BITS{1'b0}}"),
                Or(units.Select(u => $"({{BW{{b{k}_b_u{u.Index}}}}} & u{u.Index}_b_off[BW-1:0])"), "{BW{1'b0}}"));
        }).ToList();
        // Two selects of one bank port at once.
        var pairs = from k in Enumerable.Range(0, 2) from p in new[] { "a", "b" } from u in units from v in units
                    where u.Index < v.Index select $"(b{k}_{p}_u{u.Index} && b{k}_{p}_u{v.Index})";
        return new RtlValues(
            $"Generated by HwGen from model '{d.ModelName}'. Do not edit. Array {c.ArrayRows}x{c.ArrayCols}, " +
            $"scratchpad {c.ScratchpadBytes} B, port {c.PortBytes} B.",
            d.ModelName, c.ArrayRows, c.ArrayCols, c.ScratchpadLines, c.LineBytes, lineBits, c.PortBytes, portBits, c.BeatsPerLine, d.InstrBeats,
            c.ScratchpadAddressBits, c.BankLines, bankAw, CycleModel.TokenBits, Dma.EndFormat.Opcode, Dma.LoadFormat.Opcode,
            lbufBits == lineBits ? "b_rdata" : $"{{ {{{lbufBits - lineBits}{{1'b0}}}}, b_rdata }}",
            units, dispatches, Dma.LoadFormat.Decode(), banks, Or(pairs, "1'b0"));
    }

    /// <summary>Names of every module of a design, in the order <see cref="Render"/> writes them.</summary>
    public static IEnumerable<string> ModuleNames(Design d) => Modules.Concat(d.Engines.SelectMany(e => e.ModuleNames(d)));

    /// <summary>Every module of a design (one file each): the common ones, then each engine's.</summary>
    public static IEnumerable<(string Module, string Text)> Render(Design d)
    {
        var values = Prepare(d);
        foreach (var m in Modules) yield return (m, Templates.Render("templates", m + ".v.sbn", values));
        foreach (var e in d.Engines)
            foreach (var m in e.Render(d, values)) yield return m;
    }

    /// <summary>Writes rtl/&lt;module&gt;.v for every module; returns the paths.</summary>
    public static IReadOnlyList<string> Write(Design d, string dir)
    {
        Directory.CreateDirectory(dir);
        var files = new List<string>();
        foreach (var (m, text) in Render(d))
        {
            var path = Path.Combine(dir, m + ".v");
            File.WriteAllText(path, text);
            files.Add(path);
        }
        return files;
    }
}
