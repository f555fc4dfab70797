using HwGen.Core;
using HwGen.Rtl.Engines;
using HwGen.Rtl.Engines.Dma;
using HwGen.Rtl.Program;

namespace HwGen.Rtl.Emit;

/// <summary>One scratchpad port of a unit in hwgen_top (a, b or c): which bank its address lies in (one-hot), its line
/// inside that bank, and the read data of the bank port it uses.</summary>
public sealed record UnitPort(string Name, string InExpr, string OffExpr, string RdataExpr);

/// <summary>One unit in hwgen_top: its queue and its module. Unit 0 is the DMA (it owns the data port), then the engines;
/// <see cref="TokensIn"/> gathers the tokens the others give it.</summary>
public sealed record UnitInstance(int Index, string Module, string Name, bool IsDma, string TokensIn, IReadOnlyList<UnitPort> Ports);

/// <summary>An opcode the controller pushes into a unit's queue.</summary>
public sealed record Dispatch(string Mnemonic, int Opcode, int Unit, string OneHot);

/// <summary>A one-bit wire of the top: its name and expression.</summary>
public sealed record Select(string Name, string Expr);

/// <summary>One scratchpad bank in hwgen_top: its lines, what it holds, the selects of its ports (which unit port uses
/// each) and the muxed port signals.</summary>
public sealed record BankValues(int Index, long First, long Last, int Lines, int LineBytes, int LineBits, int Aw, string Role,
    IReadOnlyList<Select> Selects, string WriteEnable, string AddressA, string WriteData, string AddressB);

/// <summary>
/// The values every RTL template of a design may use, computed from the design (templates only place them; Scriban
/// sees the properties in snake_case, e.g. <c>line_bits</c>).
/// </summary>
public sealed record RtlValues(
    string Header, string Model, int Rows, int Cols, int LineBytes, int LineBits, int PortBytes, int PortBits,
    int MaxBpl, int InstrBeats, int SpadAw, int TokenBits, int EndOpcode, int LoadOpcode,
    IReadOnlyList<UnitInstance> Units, IReadOnlyList<Dispatch> Dispatches, IReadOnlyList<FieldDecode> DmaDecode,
    IReadOnlyList<BankValues> Banks, string Collision)
{
    public int UnitCount => Units.Count;

    /// <summary>An activation line (<see cref="Rows"/> bytes, the Verilog expression <paramref name="v"/>) as a unit port's
    /// write data: zero above it.</summary>
    public string ActLineToPort(string v) => LineBits == 8 * Rows ? v : $"{{ {{{LineBits - 8 * Rows}{{1'b0}}}}, {v} }}";

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

    /// <summary>What each bank holds (<see cref="HwConfig.Banks"/>).</summary>
    public static string BankRole(int bank) => bank switch
    {
        0 => "activations of even depth", 1 => "activations of odd depth", _ => "constants",
    };

    /// <summary>Every value the common RTL templates use, computed from the design.</summary>
    public static RtlValues Prepare(Design d)
    {
        var c = d.Config;
        int lineBits = c.LineBytes * 8, portBits = c.PortBytes * 8, aw = c.ScratchpadAddressBits;
        int n = d.Units.Count, banks = HwConfig.Banks;
        string OneHot(int i) => $"{n}'b{new string(Enumerable.Range(0, n).Select(b => b == n - 1 - i ? '1' : '0').ToArray())}";
        // tok_in of unit u: bit f is unit f's token for u (0 for u itself).
        string TokensIn(int u) => "{" + string.Join(", ", Enumerable.Range(0, n).Reverse().Select(f => f == u ? "1'b0" : $"tok{f}[{u}]")) + "}";
        string Lit(long v) => $"{aw}'d{v}";
        long First(int k) => c.FirstLineOf(k);
        long End(int k) => c.FirstLineOf(k) + c.LinesOf(k);
        int BankBits(int k) => c.LineBytesOf(k) * 8;
        // A bank's read data as a unit port's (zero above the bank's line), a unit port's write data as the bank's.
        string Widen(string v, int k) => BankBits(k) == lineBits ? v : $"{{{{{lineBits - BankBits(k)}{{1'b0}}}}, {v}}}";
        // Port p of unit u lies in bank k when enabled and its address is in [First(k), End(k)); comparisons that always hold are left out.
        UnitPort Port(int u, string p)
        {
            string addr = $"u{u}_{p}_addr";
            var ins = Enumerable.Range(0, banks).Reverse().Select(k =>
            {
                var terms = new List<string> { $"u{u}_{p}_en" };
                if (First(k) > 0) terms.Add($"{addr} >= {Lit(First(k))}");
                if (End(k) < 1L << aw) terms.Add($"{addr} < {Lit(End(k))}");
                return "(" + string.Join(" && ", terms) + ")";
            });
            string off = string.Concat(Enumerable.Range(1, banks - 1).Reverse().Select(k => $"u{u}_{p}_in[{k}] ? {addr} - {Lit(First(k))} : ")) + addr;
            string bankPort = p == "a" ? "a" : "b";
            string rdata = string.Join(" | ", Enumerable.Range(0, banks).Select(k => $"({{LINE_BITS{{u{u}_{p}_in_q[{k}]}}}} & {Widen($"bank{k}_{bankPort}_rdata", k)})"));
            return new UnitPort(p, "{" + string.Join(", ", ins) + "}", off, rdata);
        }
        UnitInstance Unit(int i, string module, string name, bool dma) => new(i, module, name, dma, TokensIn(i), new[] { "a", "b", "c" }.Select(p => Port(i, p)).ToList());
        var units = new List<UnitInstance> { Unit(0, "hwgen_dma", Dma.Unit, true) };
        units.AddRange(d.Engines.Select((e, i) => Unit(i + 1, e.Module, e.Name, false)));
        var dispatches = Dma.Formats.Where(f => f != Dma.EndFormat).Select(f => new Dispatch(f.Mnemonic, f.Opcode, 0, OneHot(0)))
            .Concat(d.Engines.SelectMany((e, i) => e.Formats.Select(f => new Dispatch(f.Mnemonic, f.Opcode, i + 1, OneHot(i + 1))))).ToList();
        string Or(IEnumerable<string> terms, string zero) => terms.Any() ? string.Join(" | ", terms) : zero;
        // The users of bank k's port B: every unit's B and C ports.
        var readers = units.SelectMany(u => new[] { (u.Index, "b"), (u.Index, "c") }).ToList();
        var bankValues = Enumerable.Range(0, banks).Select(k =>
        {
            int bw = Math.Max(1, (int)Math.Ceiling(Math.Log2(Math.Max(2, c.LinesOf(k))))), bits = BankBits(k);
            var selects = units.Select(u => new Select($"b{k}_a_u{u.Index}", $"u{u.Index}_a_in[{k}]"))
                .Concat(readers.Select(r => new Select($"b{k}_b_u{r.Index}{r.Item2}", $"u{r.Index}_{r.Item2}_in[{k}]"))).ToList();
            return new BankValues(k, First(k), End(k) - 1, c.LinesOf(k), c.LineBytesOf(k), bits, bw, BankRole(k), selects,
                Or(units.Select(u => $"(b{k}_a_u{u.Index} && u{u.Index}_a_we)"), "1'b0"),
                Or(units.Select(u => $"({{{bw}{{b{k}_a_u{u.Index}}}}} & u{u.Index}_a_off[{bw - 1}:0])"), $"{{{bw}{{1'b0}}}}"),
                Or(units.Select(u => $"({{{bits}{{b{k}_a_u{u.Index}}}}} & u{u.Index}_a_wdata[{bits - 1}:0])"), $"{{{bits}{{1'b0}}}}"),
                Or(readers.Select(r => $"({{{bw}{{b{k}_b_u{r.Index}{r.Item2}}}}} & u{r.Index}_{r.Item2}_off[{bw - 1}:0])"), $"{{{bw}{{1'b0}}}}"));
        }).ToList();
        // Two selects of one bank port at once.
        var pairs = Enumerable.Range(0, banks).SelectMany(k =>
            (from u in units from v in units where u.Index < v.Index select $"(b{k}_a_u{u.Index} && b{k}_a_u{v.Index})")
            .Concat(from x in Enumerable.Range(0, readers.Count) from y in Enumerable.Range(0, readers.Count) where x < y
                    select $"(b{k}_b_u{readers[x].Index}{readers[x].Item2} && b{k}_b_u{readers[y].Index}{readers[y].Item2})"));
        return new RtlValues(
            $"Generated by HwGen from model '{d.ModelName}'. Do not edit. Array {c.ArrayRows}x{c.ArrayCols}, " +
            $"scratchpad {c.ScratchpadBytes} B, port {c.PortBytes} B.",
            d.ModelName, c.ArrayRows, c.ArrayCols, c.LineBytes, lineBits, c.PortBytes, portBits, Dma.MaxBeatsPerLine(c), d.InstrBeats,
            aw, d.TokenBits, Dma.EndFormat.Opcode, Dma.LoadFormat.Opcode,
            units, dispatches, Dma.LoadFormat.Decode(), bankValues, Or(pairs, "1'b0"));
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
