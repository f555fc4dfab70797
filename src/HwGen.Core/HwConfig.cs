using System.Text.Json;

namespace HwGen.Core;

/// <summary>
/// The hardware configuration: the dense engine's MAC array (rows = activation rows processed together,
/// cols = output channels), the scratchpad size, the off-chip port width and the clock used in reports.
/// </summary>
public sealed record HwConfig
{
    public int ArrayRows { get; init; } = 4;
    public int ArrayCols { get; init; } = 8;
    public int ScratchpadBytes { get; init; } = 64 * 1024;
    public int PortBytes { get; init; } = 8;
    public double ClockMHz { get; init; } = 200;
    /// <summary>"ilp" (exact CP-SAT model, greedy when it finds nothing in time or the graph is large) or "greedy".</summary>
    public string Scheduler { get; init; } = "ilp";
    /// <summary>CP-SAT's deterministic time limit: the same problem always gets the same schedule, whatever the load.
    /// One unit took about 3 s of wall time on the 2-core development machine; wall time is capped at 10x the limit (a safety net; a solve that hits it is not reproducible).</summary>
    public double IlpTimeLimitSeconds { get; init; } = 5;
    /// <summary>CP-SAT workers: 1 (default) is reproducible, the same model always compiles to the same program;
    /// more search in parallel and often find better schedules, but not reproducibly.</summary>
    public int IlpWorkers { get; init; } = 1;
    /// <summary>Entries of every NN-LUT table (8, 16 or 32): softmax, LayerNorm and element-wise units.</summary>
    public int LutEntries { get; init; } = 16;

    /// <summary>Bytes per scratchpad line: one line feeds the array for one reduction step.</summary>
    public int LineBytes => Math.Max(ArrayRows, ArrayCols);
    public int ScratchpadLines => ScratchpadBytes / LineBytes;
    /// <summary>Off-chip port beats per scratchpad line.</summary>
    public int BeatsPerLine => (LineBytes + PortBytes - 1) / PortBytes;

    public static HwConfig Default { get; } = new();

    static readonly string[] Fields = ["arrayRows", "arrayCols", "scratchpadBytes", "portBytes", "clockMHz", "scheduler", "ilpTimeLimitSeconds", "ilpWorkers", "lutEntries"];

    /// <summary>Reads a JSON config; every field is optional, unknown fields and bad values are errors.</summary>
    public static HwConfig Load(string path)
    {
        if (!File.Exists(path)) throw HwGenException.At(path, null, "config file not found");
        JsonDocument doc;
        try { doc = JsonDocument.Parse(File.ReadAllText(path)); }
        catch (JsonException e) { throw HwGenException.At(path, null, $"config is not valid JSON ({e.Message.Split('.')[0]})"); }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object) throw HwGenException.At(path, null, "config must be a JSON object");
            var c = new HwConfig();
            foreach (var p in doc.RootElement.EnumerateObject())
            {
                if (!Fields.Contains(p.Name))
                    throw HwGenException.At(path, null, $"unknown config field '{p.Name}' (known: {string.Join(", ", Fields)})");
                if (p.Name == "scheduler")
                {
                    c = c with { Scheduler = p.Value.ValueKind == JsonValueKind.String ? p.Value.GetString()! : throw HwGenException.At(path, null, "config field 'scheduler' must be a string") };
                    continue;
                }
                if (p.Value.ValueKind != JsonValueKind.Number)
                    throw HwGenException.At(path, null, $"config field '{p.Name}' must be a number");
                c = p.Name switch
                {
                    "arrayRows" => c with { ArrayRows = Int(path, p) },
                    "arrayCols" => c with { ArrayCols = Int(path, p) },
                    "scratchpadBytes" => c with { ScratchpadBytes = Int(path, p) },
                    "portBytes" => c with { PortBytes = Int(path, p) },
                    "ilpTimeLimitSeconds" => c with { IlpTimeLimitSeconds = p.Value.GetDouble() },
                    "ilpWorkers" => c with { IlpWorkers = Int(path, p) },
                    "lutEntries" => c with { LutEntries = Int(path, p) },
                    _ => c with { ClockMHz = p.Value.GetDouble() },
                };
            }
            c.Validate(path);
            return c;
        }
    }

    static int Int(string path, JsonProperty p) =>
        p.Value.TryGetInt32(out var v) ? v : throw HwGenException.At(path, null, $"config field '{p.Name}' must be an integer");

    public void Validate(string source = "config")
    {
        void Need(bool ok, string why) { if (!ok) throw HwGenException.At(source, null, why); }
        Need(ArrayRows is >= 1 and <= 64, $"arrayRows must be in [1, 64], got {ArrayRows}");
        Need(ArrayCols is >= 1 and <= 64, $"arrayCols must be in [1, 64], got {ArrayCols}");
        Need(PortBytes is 1 or 2 or 4 or 8 or 16 or 32 or 64, $"portBytes must be a power of two in [1, 64], got {PortBytes}");
        Need(ScratchpadBytes >= LineBytes * 8 && ScratchpadBytes <= 1 << 26,
            $"scratchpadBytes must be between 8 lines ({LineBytes * 8} bytes) and 64 MiB, got {ScratchpadBytes}");
        Need(ScratchpadBytes % LineBytes == 0, $"scratchpadBytes ({ScratchpadBytes}) must be a multiple of the line size {LineBytes}");
        Need(ClockMHz is > 0 and <= 5000, $"clockMHz must be in (0, 5000], got {ClockMHz}");
        Need(Scheduler is "ilp" or "greedy", $"scheduler must be \"ilp\" or \"greedy\", got \"{Scheduler}\"");
        Need(IlpTimeLimitSeconds is > 0 and <= 3600, $"ilpTimeLimitSeconds must be in (0, 3600], got {IlpTimeLimitSeconds}");
        Need(IlpWorkers is >= 1 and <= 64, $"ilpWorkers must be in [1, 64], got {IlpWorkers}");
        Need(LutEntries is 8 or 16 or 32, $"lutEntries must be 8, 16 or 32 (table entries of the nonlinear units), got {LutEntries}");
    }
}
