using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace HwGen.Core;

/// <summary>
/// The hardware configuration: the dense engine's MAC array (rows = activation rows processed together,
/// cols = output channels), the scratchpad size, the off-chip port width and the clock used in reports.
/// </summary>
public sealed record HwConfig
{
    // What each property means, its JSON name and its rule: its entry in Fields below.
    public int ArrayRows { get; init; } = 4;
    public int ArrayCols { get; init; } = 8;
    public int ScratchpadBytes { get; init; } = 64 * 1024;
    public int PortBytes { get; init; } = 8;
    public double ClockMHz { get; init; } = 200;
    public string Scheduler { get; init; } = "ilp";
    /// <summary>CP-SAT's deterministic time budget for one compile, shared by every solve: the same problem always gets the same
    /// schedule, whatever the load.</summary>
    public double IlpTimeLimitSeconds { get; init; } = 5;
    public int IlpWorkers { get; init; } = 1;
    /// <summary>Entries of every NN-LUT table: softmax, LayerNorm and element-wise units.</summary>
    public int LutEntries { get; init; } = 16;
    /// <summary>G of the table-lookup ternary engine: ternary weights in groups of G (2 or 3) per table; 0 turns the engine off.</summary>
    public int TlmmGroup { get; init; } = 2;
    /// <summary>Layers forced onto the table-lookup ternary engine, by name, comma-separated (their weights must be ternary).</summary>
    public string TlmmLayers { get; init; } = "";
    /// <summary>Layers on the bit-serial mixture-of-datatype engine (BitMoD): comma-separated entries <c>name</c> or
    /// <c>name=FORMAT[BITS][/GROUP]</c>; <c>*</c> names every layer.</summary>
    public string BitmodLayers { get; init; } = "";
    /// <summary>BitMoD defaults of the layers <see cref="BitmodLayers"/> names: weight bits, format, group size, group scale bits.</summary>
    public int BitmodBits { get; init; } = 4;
    public string BitmodFormat { get; init; } = "mod";
    public int BitmodGroup { get; init; } = 128;
    public int BitmodScaleBits { get; init; } = 8;
    /// <summary>Attention layers on the sparse attention engine, with their masks: <c>;</c>-separated entries <c>LAYER=MASK[/MASK..]</c>
    /// (one mask for every head or one per head; SparsifyAttention reads them).</summary>
    public string SparseAttention { get; init; } = "";
    /// <summary>The names in <see cref="TlmmLayers"/>.</summary>
    public IReadOnlyList<string> TlmmForced => TlmmLayers.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);

    /// <summary>Bytes of an activation line: ArrayRows features of one row, what the array's rows reduce over in one cycle.</summary>
    public int ActLineBytes => ArrayRows;
    /// <summary>Bytes of a constant line: ArrayRows inputs x ArrayCols columns of weights, what the array multiplies in one cycle.</summary>
    public int ConstLineBytes => ArrayRows * ArrayCols;
    /// <summary>The widest line: the width of every unit's scratchpad ports.</summary>
    public int LineBytes => ConstLineBytes;
    /// <summary>Banks of the scratchpad: 0 and 1 hold activations (tensors alternate between them by depth, so that an engine
    /// writes its results into the bank the DMA is not loading), 2 and 3 constants (weight chunks alternate, so the next
    /// loads while the engine reads the current one). Each bank has its own two ports and its own line width.</summary>
    public const int Banks = 4;
    /// <summary>Bytes of each bank: a quarter of the scratchpad, in whole constant lines.</summary>
    public int BankBytes => ScratchpadBytes / Banks / ConstLineBytes * ConstLineBytes;
    public int LineBytesOf(int bank) => bank < 2 ? ActLineBytes : ConstLineBytes;
    public int LinesOf(int bank) => BankBytes / LineBytesOf(bank);
    /// <summary>The first line of a bank: lines are numbered across the banks, 0 and 1 (activation lines), then 2 and 3.</summary>
    public long FirstLineOf(int bank) => bank switch { 0 => 0, 1 => LinesOf(0), 2 => 2L * LinesOf(0), _ => 2L * LinesOf(0) + LinesOf(2) };
    public long ScratchpadLines => FirstLineOf(Banks - 1) + LinesOf(Banks - 1);
    /// <summary>The bank of a scratchpad line.</summary>
    public int BankOf(long line) => line < LinesOf(0) ? 0 : line < FirstLineOf(2) ? 1 : line < FirstLineOf(3) ? 2 : 3;
    /// <summary>The line at byte <paramref name="address"/> of the scratchpad (bank after bank, <see cref="BankBytes"/> each).</summary>
    public long LineAt(long address)
    {
        int bank = (int)Math.Min(Banks - 1, address / BankBytes);
        return FirstLineOf(bank) + (address - (long)bank * BankBytes) / LineBytesOf(bank);
    }
    /// <summary>Bits of a scratchpad line address (the RTL's AW).</summary>
    public int ScratchpadAddressBits => Math.Max(1, (int)Math.Ceiling(Math.Log2(ScratchpadLines)));

    public static HwConfig Default { get; } = new();

    /// <summary>
    /// Every field of the configuration, in the README's order: the JSON reader (<see cref="Load"/>), the manifest
    /// (<see cref="ToJson"/>, <see cref="FromJson(JsonElement, string, bool)"/>), <see cref="Validate"/> and the README's table all
    /// come from this list. A new property needs an entry here and a row in the README (a test compares them).
    /// </summary>
    public static IReadOnlyList<ConfigField> Fields { get; } =
    [
        ConfigField.Int("arrayRows", c => c.ArrayRows, (c, v) => c with { ArrayRows = v }, v => v is >= 1 and <= 64, "in [1, 64]",
            "rows of the MAC array (1-64): they split each dot product, so a cycle reduces over `arrayRows` inputs; also the rows of a block"),
        ConfigField.Int("arrayCols", c => c.ArrayCols, (c, v) => c with { ArrayCols = v }, v => v is >= 1 and <= 64, "in [1, 64]",
            "output channels computed in parallel (1-64), a multiple of `arrayRows`"),
        ConfigField.Int("scratchpadBytes", c => c.ScratchpadBytes, (c, v) => c with { ScratchpadBytes = v }, v => v is >= 1 and <= 1 << 26, "in [1, 67108864] (64 MiB)",
            "on-chip scratchpad (block RAM) in four equal banks: activations in lines of `arrayRows` bytes, weights in lines of `arrayRows`x`arrayCols` bytes; at least 16 weight lines"),
        ConfigField.Int("portBytes", c => c.PortBytes, (c, v) => c with { PortBytes = v }, v => v is 1 or 2 or 4 or 8 or 16 or 32 or 64, "a power of two in [1, 64]",
            "off-chip memory port width (power of two, 1-64)"),
        ConfigField.Double("clockMHz", c => c.ClockMHz, (c, v) => c with { ClockMHz = v }, v => v is > 0 and <= 5000, "in (0, 5000]",
            "clock for time estimates in the report only"),
        ConfigField.String("scheduler", c => c.Scheduler, (c, v) => c with { Scheduler = v }, v => v is "ilp" or "greedy", "\"ilp\" or \"greedy\"",
            "`\"ilp\"`: exact CP-SAT model for up to 60 tasks; divide and conquer above, whose schedule then starts one exact solve of the whole graph " +
            "up to 300 tasks, greedy when they find nothing better; `\"greedy\"`: the baseline only"),
        ConfigField.Double("ilpTimeLimitSeconds", c => c.IlpTimeLimitSeconds, (c, v) => c with { IlpTimeLimitSeconds = v }, v => v is > 0 and <= 3600, "in (0, 3600]",
            "CP-SAT's deterministic time budget for the whole compile, shared by every solve (about 1-3 s of wall time per unit here, more with " +
            "model building; the solves also stop at 10x the budget in wall time, a safety net: a compile that hits it is not reproducible). Up " +
            "to 60 tasks the exact model's timing stage gets 80 % of it and address placement the rest (the full model, when the timing does " +
            "not fit side by side, what is left); above, divide and conquer gets a quarter for each of its three passes and a quarter for the " +
            "whole-graph solve after it (up to 300 tasks)"),
        ConfigField.Int("lutEntries", c => c.LutEntries, (c, v) => c with { LutEntries = v }, v => v is 8 or 16 or 32, "8, 16 or 32 (table entries of the nonlinear units)",
            "entries of the nonlinear units' tables: 8, 16 or 32"),
        ConfigField.Int("ilpWorkers", c => c.IlpWorkers, (c, v) => c with { IlpWorkers = v }, v => v is >= 1 and <= 64, "in [1, 64]",
            "CP-SAT workers. 1 is reproducible: a model always compiles to the same program. More workers often find better schedules, " +
            "but CP-SAT's parallel search gives different schedules run to run"),
        ConfigField.Int("tlmmGroup", c => c.TlmmGroup, (c, v) => c with { TlmmGroup = v }, v => v is >= 0 and <= 16, "in [0, 16]",
            "G of the table-lookup ternary engine (TLMM): a layer whose weights all lie in {-1, 0, 1} runs on it, its weights packed in groups of G " +
            "(2: 4 bits per 2 weights; 3: 5 bits per 3 weights); 0 turns it off (the dense engine takes every layer). Another G is an error naming the first ternary layer"),
        ConfigField.String("tlmmLayers", c => c.TlmmLayers, (c, v) => c with { TlmmLayers = v }, v => !v.Split(',').Any(n => n.Trim().Length == 0) || v.Trim().Length == 0,
            "layer names separated by commas (\"fc1,fc2\"), none empty",
            "layers forced onto TLMM, by name, comma-separated (`\"fc1,fc2\"`): a forced layer whose weights are not ternary is an error naming it and its first other value, a name that is no layer an error listing the layers"),
        ConfigField.String("bitmodLayers", c => c.BitmodLayers, (c, v) => c with { BitmodLayers = v }, v => v.Trim().Length == 0 || !v.Split(',').Any(n => n.Split('=')[0].Trim().Length == 0),
            "entries separated by commas, each a layer name or `*`, optionally `=FORMAT[BITS][/GROUP]` (\"fc1=mod3/64,fc2\")",
            "layers on the bit-serial mixture-of-datatype engine (BitMoD), comma-separated: a name or `*` (every layer), each optionally with its own " +
            "`=FORMAT[BITS][/GROUP]` (`\"fc1=mod3/64,*=int4\"`); the others take the four fields below. Their weights are requantized per group " +
            "to 3 or 4 bits (INT weights that already fit, such as QONNX's, run as they are); a name that is no layer is an error listing the layers"),
        ConfigField.Int("bitmodBits", c => c.BitmodBits, (c, v) => c with { BitmodBits = v }, v => v is >= 1 and <= 16, "in [1, 16]",
            "BitMoD weight bits: 3 or 4 (another is an error naming the first BitMoD layer)"),
        ConfigField.String("bitmodFormat", c => c.BitmodFormat, (c, v) => c with { BitmodFormat = v }, v => v.Trim().Length > 0, "a format name, \"mod\" or \"int\" (another is an error naming the first BitMoD layer)",
            "BitMoD format: `\"mod\"` (per group the least-error of FP with an extra-resolution or extra-asymmetry value, ±) or `\"int\"` (INT alone); " +
            "another name is an error naming the first BitMoD layer"),
        ConfigField.Int("bitmodGroup", c => c.BitmodGroup, (c, v) => c with { BitmodGroup = v }, v => v is >= 1 and <= 65536, "in [1, 65536]",
            "BitMoD group size along the input dimension: a multiple of `arrayRows`, at most 255 weight lines (else an error naming the layer)"),
        ConfigField.Int("bitmodScaleBits", c => c.BitmodScaleBits, (c, v) => c with { BitmodScaleBits = v }, v => v is >= 1 and <= 16, "in [1, 16]",
            "bits of BitMoD's unsigned integer group scales (the second level under a per-channel scale); at most 8·`arrayRows` - 3 (a group header line holds them)"),
        ConfigField.String("sparseAttention", c => c.SparseAttention, (c, v) => c with { SparseAttention = v },
            v => v.Trim().Length == 0 || v.Split(';').All(e => e.Split('=', 2) is [var n, var m] && n.Trim().Length > 0 && m.Trim().Length > 0),
            "entries `LAYER=MASK[/MASK..]` separated by `;`, none empty (\"softmax=model;attn2=causal/lambda(s=2, w=4)\")",
            "attention layers (named by their Softmax node, or `*` for every one) on the sparse attention engine, `;`-separated `LAYER=MASK`, " +
            "`/` between the masks of the heads (one mask for every head or one per head). A mask is `model` (the model's additive mask: " +
            "a Λ pattern becomes Λ, any other CSR; none is dense), `vitcod(theta=θ)` (ViTCoD's split of the model's mask, θ in [0, 1]), " +
            "or the IR text of one: `dense`, `causal`, `lambda(s=S, w=W[, causal])`, `csr(ptr=[..], col=[..])`. Empty: attention stays dense"),
    ];

    /// <summary>Reads a JSON config file; every field is optional, unknown fields and bad values are errors.</summary>
    public static HwConfig Load(string path)
    {
        if (!File.Exists(path)) throw HwGenException.At(path, null, "config file not found");
        JsonDocument doc;
        try { doc = JsonDocument.Parse(File.ReadAllText(path)); }
        catch (JsonException e) { throw HwGenException.At(path, null, $"config is not valid JSON ({e.Message.Split('.')[0]})"); }
        using (doc) return FromJson(doc.RootElement, path);
    }

    /// <summary>Every field, as the JSON object that <see cref="FromJson(JsonElement, string, bool)"/> reads back.</summary>
    public JsonObject ToJson() => new(Fields.Select(f => KeyValuePair.Create(f.Name, (JsonNode?)f.Write(this))));

    /// <summary>
    /// Reads a config object through <see cref="Fields"/> and validates it; errors name <paramref name="source"/>. Unknown fields and bad
    /// values are errors; a missing field keeps its default, or is an error when <paramref name="complete"/> (a manifest holds every field).
    /// </summary>
    public static HwConfig FromJson(JsonElement json, string source, bool complete = false)
    {
        if (json.ValueKind != JsonValueKind.Object) throw HwGenException.At(source, null, "config must be a JSON object");
        var c = new HwConfig();
        foreach (var p in json.EnumerateObject())
        {
            var name = ConfigField.Text(() => p.Name, source, "a field name");
            var f = Fields.FirstOrDefault(f => f.Name == name)
                ?? throw HwGenException.At(source, null, $"unknown config field '{name}' (known: {string.Join(", ", Fields.Select(f => f.Name))})");
            c = f.Read(c, p.Value, source);
        }
        if (complete && Fields.FirstOrDefault(f => !json.TryGetProperty(f.Name, out _)) is { } missing)
            throw HwGenException.At(source, null, $"config has no '{missing.Name}'");
        c.Validate(source);
        return c;
    }

    /// <inheritdoc cref="FromJson(JsonElement, string, bool)"/>
    public static HwConfig FromJson(JsonNode? json, string source, bool complete = false)
    {
        using var doc = JsonDocument.Parse(json?.ToJsonString() ?? "{}");
        return FromJson(doc.RootElement, source, complete);
    }

    /// <summary>Each field's rule (<see cref="Fields"/>), then the rules between fields.</summary>
    public void Validate(string source = "config")
    {
        void Need(bool ok, string why) { if (!ok) throw HwGenException.At(source, null, why); }
        foreach (var f in Fields) Need(f.IsValid(this), f.Error(this));
        Need(ArrayCols % ArrayRows == 0, $"arrayCols ({ArrayCols}) must be a multiple of arrayRows ({ArrayRows}): an output tile of arrayCols features fills whole activation lines of arrayRows features");
        Need(ScratchpadBytes >= 4 * Banks * ConstLineBytes,
            $"scratchpadBytes must give each of the {Banks} banks at least 4 lines of {ConstLineBytes} bytes (arrayRows x arrayCols): at least {4 * Banks * ConstLineBytes}, got {ScratchpadBytes}");
    }
}

public enum ConfigKind { Int, Double, String }

/// <summary>
/// One field of <see cref="HwConfig"/> (an entry of <see cref="HwConfig.Fields"/>): its JSON name and kind, how to get it and set it
/// (values are boxed <c>int</c>, <c>double</c> or <c>string</c> by <see cref="Kind"/>), its rule, and its text in the README's table.
/// </summary>
/// <param name="Rule">what a valid value is, completing "name must be ...", e.g. "in [1, 64]".</param>
/// <param name="Doc">the meaning column of the README's "Hardware configuration" table (Markdown).</param>
public sealed record ConfigField(string Name, ConfigKind Kind, Func<HwConfig, object> Get, Func<HwConfig, object, HwConfig> Set,
    Func<HwConfig, bool> IsValid, string Rule, string Doc)
{
    public static ConfigField Int(string name, Func<HwConfig, int> get, Func<HwConfig, int, HwConfig> set, Func<int, bool> ok, string rule, string doc) =>
        new(name, ConfigKind.Int, c => get(c), (c, v) => set(c, (int)v), c => ok(get(c)), rule, doc);
    public static ConfigField Double(string name, Func<HwConfig, double> get, Func<HwConfig, double, HwConfig> set, Func<double, bool> ok, string rule, string doc) =>
        new(name, ConfigKind.Double, c => get(c), (c, v) => set(c, (double)v), c => ok(get(c)), rule, doc);
    public static ConfigField String(string name, Func<HwConfig, string> get, Func<HwConfig, string, HwConfig> set, Func<string, bool> ok, string rule, string doc) =>
        new(name, ConfigKind.String, c => get(c), (c, v) => set(c, (string)v), c => ok(get(c)), rule, doc);

    public object Default => Get(HwConfig.Default);

    /// <summary>A value as JSON writes it: numbers invariant, strings quoted.</summary>
    public static string Format(object value) => value switch
    {
        string s => JsonSerializer.Serialize(s),
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => value.ToString() ?? "",
    };

    /// <summary>The message when <see cref="IsValid"/> fails: "arrayRows must be in [1, 64], got 0".</summary>
    public string Error(HwConfig c) => $"{Name} must be {Rule}, got {Format(Get(c))}";

    public JsonNode Write(HwConfig c) => Get(c) switch
    {
        int i => JsonValue.Create(i),
        double d => JsonValue.Create(d),
        var v => JsonValue.Create((string)v)!,
    };

    /// <summary>A JSON string's text, or an error naming <paramref name="source"/> when its escapes are no valid UTF-16 (a lone
    /// surrogate such as "\ud800", which JSON's grammar allows and .NET's reader refuses only when the text is read).</summary>
    public static string Text(Func<string> read, string source, string what)
    {
        try { return read(); }
        catch (InvalidOperationException) { throw HwGenException.At(source, null, $"{what} holds an escape that is no valid UTF-16 (a lone surrogate)"); }
    }

    /// <summary>Sets this field of <paramref name="c"/> from a JSON value, or names <paramref name="source"/> and the field when the value has the wrong type.</summary>
    public HwConfig Read(HwConfig c, JsonElement v, string source)
    {
        HwGenException Wrong(string what) => HwGenException.At(source, null, $"config field '{Name}' must be {what}");
        if (Kind == ConfigKind.String)
            return Set(c, v.ValueKind == JsonValueKind.String ? Text(() => v.GetString()!, source, $"config field '{Name}'") : throw Wrong("a string"));
        if (v.ValueKind != JsonValueKind.Number) throw Wrong("a number");
        if (Kind == ConfigKind.Int) return Set(c, v.TryGetInt32(out var i) ? i : throw Wrong("an integer"));
        return Set(c, v.TryGetDouble(out var d) ? d : throw Wrong("a finite number"));
    }
}
