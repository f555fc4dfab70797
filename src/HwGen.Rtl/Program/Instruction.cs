using HwGen.Core;
using HwGen.Core.Ir;

namespace HwGen.Rtl.Program;

/// <summary>How the Verilog decoder declares a field: a scratchpad line (AW bits), plain bits, or signed bits.</summary>
public enum FieldKind { Bits, Line, Signed }

/// <summary>
/// One field of an instruction: bits [Lsb, Lsb + Width) of 32-bit word <see cref="Word"/>. <see cref="Get"/> reads it from
/// the C# instruction; the encoder and the Verilog decoder both come from this record, so they cannot disagree.
/// </summary>
public sealed record Field(string Name, int Word, int Lsb, int Width, FieldKind Kind, Func<Instruction, long> Get)
{
    /// <summary>Bit offset in the 256-bit instruction.</summary>
    public int Offset => Word * 32 + Lsb;
    /// <summary>The field's bits, at bit 0.</summary>
    public ulong Mask => Width == 32 ? uint.MaxValue : (1UL << Width) - 1;

    /// <summary>Whether <paramref name="v"/> fits the field: two's complement for a signed one, else unsigned.</summary>
    public bool Fits(long v) => Kind == FieldKind.Signed ? v >= -(1L << (Width - 1)) && v < 1L << (Width - 1) : v >= 0 && (ulong)v <= Mask;
}

/// <summary>One field as the Verilog decoder declares it, e.g. <c>wire [AW-1:0] act_line = instr[32 +: AW];</c>.</summary>
public sealed record FieldDecode(string Name, string Verilog);

/// <summary>
/// An instruction format: its opcode (bits [3:0] of word 0), the dependency tokens every instruction carries (bits
/// [23:16] of word 0: the units it waits for, [31:24]: the units it signals, bit u for unit u; see <see cref="Tokens"/>)
/// and its field table (the unit that executes it is the
/// instruction's <see cref="Instruction.Unit"/>).
/// Instructions are <see cref="Instruction.Bytes"/> bytes = eight little-endian 32-bit words.
/// </summary>
public sealed class InstructionFormat
{
    /// <summary>Units a token mask can name (the RTL's N_UNITS at most).</summary>
    public const int MaxUnits = 8;
    /// <summary>First bit of the wait mask in word 0; the signal mask follows it.</summary>
    public const int TokenLsb = 16;

    public string Mnemonic { get; }
    public int Opcode { get; }
    public IReadOnlyList<Field> Fields { get; }

    public InstructionFormat(string mnemonic, int opcode, IReadOnlyList<Field> fields)
    {
        if (opcode is < 0 or > 15) throw new ArgumentOutOfRangeException(nameof(opcode), "opcodes are 4 bits");
        var used = new bool[Instruction.Bytes * 8];
        for (int b = 0; b < 4; b++) used[b] = true;
        for (int b = TokenLsb; b < 32; b++) used[b] = true;
        foreach (var f in fields)
        {
            if (f.Word is < 0 or > 7 || f.Lsb < 0 || f.Width < 1 || f.Lsb + f.Width > 32)
                throw new ArgumentException($"{mnemonic}: field {f.Name} does not lie inside one word");
            for (int b = f.Offset; b < f.Offset + f.Width; b++)
                used[b] = used[b] ? throw new ArgumentException($"{mnemonic}: field {f.Name} overlaps another field") : true;
        }
        Mnemonic = mnemonic;
        Opcode = opcode;
        Fields = fields;
    }

    /// <summary>The field named <paramref name="name"/>.</summary>
    public Field this[string name] => Fields.FirstOrDefault(f => f.Name == name) ?? throw new ArgumentException($"{Mnemonic} has no field '{name}'");

    /// <summary>The eight words of an instruction: opcode, token masks (bit u: unit u) and fields.</summary>
    public uint[] Encode(Instruction i, int waitMask = 0, int signalMask = 0)
    {
        if (waitMask is < 0 or >= 1 << MaxUnits || signalMask is < 0 or >= 1 << MaxUnits) throw new ArgumentOutOfRangeException(nameof(waitMask), "token masks are 8 bits");
        var w = new uint[Instruction.Bytes / 4];
        w[0] = (uint)Opcode | (uint)waitMask << TokenLsb | (uint)signalMask << (TokenLsb + MaxUnits);
        foreach (var f in Fields)
        {
            long v = f.Get(i);
            if (!f.Fits(v)) throw new HwGenException($"instruction {Mnemonic} ({i.Comment}): field '{f.Name}' = {v} does not fit in {f.Width} bits");
            w[f.Word] |= (uint)(((ulong)v & f.Mask) << f.Lsb);
        }
        return w;
    }

    /// <summary>The field values as the hardware decodes them from <paramref name="words"/>: signed fields sign-extended,
    /// scratchpad lines cut to <paramref name="addressBits"/> bits like the Verilog decoder's <c>AW</c>.</summary>
    public DecodedFields DecodeValues(uint[] words, int addressBits)
    {
        var values = new Dictionary<string, long>();
        foreach (var f in Fields)
        {
            ulong raw = (words[f.Word] >> f.Lsb) & f.Mask;
            values[f.Name] = f.Kind switch
            {
                FieldKind.Signed => (long)(raw << (64 - f.Width)) >> (64 - f.Width),
                FieldKind.Line => (long)(raw & ((1UL << Math.Min(addressBits, 32)) - 1)),
                _ => (long)raw,
            };
        }
        return new DecodedFields(Mnemonic, values);
    }

    /// <summary>The decoder's wires, in table order, reading the instruction from the register <paramref name="source"/>, each
    /// named <paramref name="prefix"/> + the field's name.</summary>
    public IReadOnlyList<FieldDecode> Decode(string source = "instr", string prefix = "") => Fields.Select(f =>
    {
        var decl = f.Kind switch { FieldKind.Line => "[AW-1:0] ", FieldKind.Signed => $"signed [{f.Width - 1}:0] ", _ => f.Width == 1 ? "" : $"[{f.Width - 1}:0] " };
        var bits = f.Kind == FieldKind.Line ? $"{f.Offset} +: AW" : f.Width == 1 ? $"{f.Offset}" : $"{f.Offset + f.Width - 1}:{f.Offset}";
        return new FieldDecode(prefix + f.Name, $"wire {decl}{prefix}{f.Name} = {source}[{bits}];");
    }).ToList();
}

/// <summary>An instruction's fields as decoded from its encoding, by name (what the instruction-level simulator executes).</summary>
public sealed class DecodedFields(string mnemonic, IReadOnlyDictionary<string, long> values)
{
    public long this[string name] => values.TryGetValue(name, out var v) ? v : throw new InvalidOperationException($"{mnemonic} has no field '{name}'");
    public int Int(string name) => checked((int)this[name]);
    public bool Flag(string name) => this[name] != 0;
}

/// <summary>Scratchpad lines [First, First + Count).</summary>
public readonly record struct LineRange(long First, long Count);

/// <summary>A unit's scratchpad ports: A reads or writes, B and C read. A unit's A port uses port A of the bank its address
/// lies in, its B and C ports use port B of their banks (every bank has those two ports).</summary>
public enum SpadPort { A, B, C }

/// <summary>Lines an instruction reads or writes through one of its unit's scratchpad ports. Two units never use the same
/// port of the same bank at once: the dependency tokens order them (<see cref="Tokens"/>).</summary>
public readonly record struct Access(LineRange Lines, SpadPort Port, bool Write)
{
    public static Access Read(long first, long count, SpadPort port) => new(new LineRange(first, count), port, false);
    public static Access WriteA(long first, long count) => new(new LineRange(first, count), SpadPort.A, true);
}

/// <summary>
/// One instruction of the program. Each engine defines its instruction records beside its format, cycle count and
/// merge rule; <see cref="Owner"/> is the IR op whose work it does (the report adds costs up by owner).
/// </summary>
public abstract record Instruction
{
    public const int Bytes = 32;

    /// <summary>Port beats that carry one instruction.</summary>
    public static int Beats(HwConfig c) => (Bytes + c.PortBytes - 1) / c.PortBytes;

    public abstract InstructionFormat Format { get; }
    /// <summary>The IR op this instruction works for; null for END.</summary>
    public Op? Owner { get; init; }
    /// <summary>What the instruction does, for people (the report and the manifest); no logic reads it.</summary>
    public abstract string Comment { get; }
    /// <summary>The instruction's fields and flags as text, without the comment.</summary>
    protected abstract string Text { get; }
    /// <summary>Cycles its unit works on it alone, with a memory that never stalls: taken in cycle a, it retires in a + Cycles.
    /// A unit that runs one instruction at a time (<see cref="SerialTimer"/>) can take the next in that cycle; a unit whose
    /// instructions overlap has its own <see cref="IUnitTimer"/>.</summary>
    public abstract long Cycles(HwConfig c);

    /// <summary>The unit that executes it: "dma" (the controller's LOAD, STORE and END) or an engine's name. A unit runs its
    /// instructions in program order; different units may overlap, ordered only by the dependency tokens (<see cref="Tokens"/>).</summary>
    public abstract string Unit { get; }

    /// <summary>Scratchpad lines it reads and writes, and through which port of its unit (the dependency tokens come from
    /// these). The RTL's port enables must match: the top stops the simulation when two units meet on a bank port.</summary>
    public virtual IEnumerable<Access> Accesses(HwConfig c) => [];
    public IEnumerable<LineRange> Reads(HwConfig c) => Accesses(c).Where(a => !a.Write).Select(a => a.Lines);
    public IEnumerable<LineRange> Writes(HwConfig c) => Accesses(c).Where(a => a.Write).Select(a => a.Lines);

    /// <summary>What the instruction does to the machine, at the instruction level (<see cref="InstructionSimulator"/>), from
    /// its fields as the hardware decodes them, so a wrong encoding is caught too.</summary>
    public abstract void Execute(Machine m, DecodedFields f);

    /// <summary>Off-chip bytes the instruction moves (loads and stores).</summary>
    public virtual long OffChipBytes(HwConfig c) => 0;

    /// <summary>One instruction doing this one's work and then <paramref name="next"/>'s, when they continue each other; else null.</summary>
    public virtual Instruction? MergedWith(Instruction next, HwConfig c) => null;

    /// <summary>This instruction when <paramref name="previous"/> is the one its unit ran just before it (null: none): an
    /// engine drops work whose result its registers still hold. The default changes nothing.</summary>
    public virtual Instruction After(Instruction? previous) => this;

    public uint[] Encode(int waitMask = 0, int signalMask = 0) => Format.Encode(this, waitMask, signalMask);

    public sealed override string ToString() => Comment.Length == 0 ? Text : $"{Text}  ; {Comment}";
}
