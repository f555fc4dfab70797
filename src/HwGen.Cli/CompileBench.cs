using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Google.Protobuf;
using HwGen.Core;
using HwGen.Core.Ir;
using HwGen.Onnx;
using HwGen.Onnx.Proto;

namespace HwGen.Cli;

/// <summary>
/// The compile benchmark: synthetic int8 QDQ MLPs (square layers of up to 4096 features, the largest a tensor may be; as many
/// as the size needs) from about 1M parameters up to a given size, each written as an ONNX file and compiled end to end
/// (<c>hwgen compile</c>'s path, into a temporary directory), with the wall time and the peak resident memory of every phase
/// (<see cref="Phases"/>). Each size runs in a child process of its own, so its peak is its own; the child prints one
/// line, <see cref="RowPrefix"/> and the row as JSON.
/// </summary>
public static class CompileBench
{
    /// <summary>The phases, in order: loading the ONNX file, import and the passes, the design (tiling, schedule, program,
    /// tokens, cycle model, memory image), Verilog, the golden and instruction-level runs, the testbench's vectors, the
    /// manifest, report and charts, model.hwir and model.consts, and the marker and move into place.</summary>
    public static readonly string[] Phases = ["load", "passes", "schedule", "rtl", "golden", "testbench", "report", "hwir", "commit"];

    /// <summary>The sizes the benchmark steps through (parameters), up to its maximum.</summary>
    public static readonly long[] Ladder = [1_000_000, 4_000_000, 16_000_000, 32_000_000, 64_000_000, 100_000_000, 200_000_000, 400_000_000, 1_000_000_000];

    /// <summary>Widest layer: 4096 x 4096 weights, 2^24, the most elements of one tensor (<see cref="Limits.MaxTensorElements"/>).</summary>
    public const int MaxWidth = 4096;

    public const string RowPrefix = "BENCH-ROW ";

    /// <summary>The weight kinds: int8 (QDQ, uniform codes, the dense engine), ternary (QDQ int8 codes in {-1, 0, 1}, which the
    /// table-lookup engine takes) and int4 (float weights behind a QONNX Quant of bit width 4, signed; codes in [-8, 7],
    /// run as int8 on the dense engine).</summary>
    public static readonly string[] Kinds = ["int8", "ternary", "int4"];

    /// <summary>Bytes of one weight in the ONNX file: int8 codes for int8 and ternary, float32 for the QONNX int4 model.</summary>
    public static int FileBytesPerWeight(string kind) => kind == "int4" ? 4 : 1;

    /// <summary>Models whose weights take more than this are written with ONNX external data: protobuf stops at 2 GB.</summary>
    public const long InlineMaxBytes = int.MaxValue;

    /// <summary>The kind, checked: one of <see cref="Kinds"/>.</summary>
    public static string Kind(string kind) => Kinds.Contains(kind) ? kind
        : throw new HwGenException($"bench compile: --kind '{kind}' is not one of {string.Join(", ", Kinds)}");

    public sealed record Row(long Params, int Width, int Layers, int Tasks, int Instructions, long OutputBytes, long HwirBytes,
        long MemoryImageBytes, IReadOnlyList<PhaseCost> Phases, bool PerPhasePeaks, string? Failure = null)
    {
        /// <summary>The weight kind (<see cref="Kinds"/>).</summary>
        public string Kind { get; init; } = "int8";
        /// <summary>Whether the weights were ONNX external data.</summary>
        public bool External { get; init; }
        public double Seconds => Phases.Sum(p => p.Seconds);
        public double CpuSeconds => Phases.Sum(p => p.CpuSeconds);
        public long PeakBytes => Phases.Count == 0 ? 0 : Phases.Max(p => p.PeakBytes);
    }

    /// <summary>Parses a parameter count: a number with an optional K, M or G/B suffix (1000s), e.g. 100M, 1.5B.</summary>
    public static long ParseCount(string text)
    {
        var t = text.Trim();
        double mult = 1;
        if (t.Length > 0 && char.ToUpperInvariant(t[^1]) is var s && s is 'K' or 'M' or 'G' or 'B')
        {
            mult = s == 'K' ? 1e3 : s == 'M' ? 1e6 : 1e9;
            t = t[..^1];
        }
        if (!double.TryParse(t, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) || !(v * mult >= 1) || v * mult > 1e12)
            throw new HwGenException($"'{text}' is not a parameter count (a number with an optional K, M or B suffix, e.g. 100M)");
        return (long)Math.Round(v * mult);
    }

    /// <summary>The sizes to run: the ladder up to <paramref name="max"/>, and <paramref name="max"/> itself.</summary>
    public static List<long> Sizes(long max) => [.. Ladder.Where(p => p < max * 0.97), max];

    /// <summary>The MLP for a size: layers of the widest power of two up to <see cref="MaxWidth"/> whose square fits the size,
    /// as many as come nearest to it (at least one).</summary>
    public static (int Width, int Layers) Shape(long parameters)
    {
        int w = 16;
        while (w < MaxWidth && (long)(2 * w) * (2 * w) <= parameters) w *= 2;
        return (w, (int)Math.Max(1, Math.Round(parameters / (double)((long)w * w))));
    }

    /// <summary>
    /// A seeded QDQ MLP at batch 1: QuantizeLinear of the input, then per layer DequantizeLinear of the activation and of
    /// weights [w, w] (per tensor, zero point 0; for <paramref name="kind"/> int4 a QONNX Quant of float weights instead), MatMul,
    /// Add of a float bias, Relu (but on the last), QuantizeLinear; DequantizeLinear of the result. Scales keep the codes inside
    /// their range. The weights' bytes are wrapped, not copied.
    /// </summary>
    public static ModelProto Mlp(int width, int layers, int seed = 17, string kind = "int8")
    {
        var rng = new Random(seed);
        var g = new GraphProto { Name = $"mlp{width}x{layers}" };
        var m = new ModelProto { IrVersion = 8, ProducerName = "hwgen-bench", Graph = g };
        m.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = 13 });
        if (kind == "int4") m.OpsetImport.Add(new OperatorSetIdProto { Domain = QonnxQuant.Domains[0], Version = 1 });
        // The codes' standard deviation: uniform int8 about 73.9, ternary (each of -1, 0, 1 a third) sqrt(2/3), uniform [-8, 7] 4.64.
        double codeStd = kind switch { "ternary" => Math.Sqrt(2.0 / 3), "int4" => 4.64, _ => 73.9 };
        string Init(string name, DType type, long[] dims, byte[] raw)
        {
            var t = new TensorProto { Name = name, DataType = OnnxLoader.FromDType(type), RawData = UnsafeByteOperations.UnsafeWrap(raw) };
            t.Dims.AddRange(dims);
            g.Initializer.Add(t);
            return name;
        }
        string Scalar(string name, float v) => Init(name, DType.Float32, [], BitConverter.GetBytes(v));
        string Zero(string name) => Init(name, DType.Int8, [], [0]);
        string Node(string op, string name, params string[] inputs)
        {
            var n = new NodeProto { OpType = op, Name = name };
            n.Input.AddRange(inputs);
            n.Output.Add(name + "_out");
            g.Node.Add(n);
            return name + "_out";
        }
        string Quant(string name, params string[] inputs)
        {
            var o = Node("Quant", name, inputs);
            var n = g.Node[^1];
            n.Domain = QonnxQuant.Domains[0];
            n.Attribute.Add(new AttributeProto { Name = "signed", Type = AttributeProto.Types.AttributeType.Int, I = 1 });
            n.Attribute.Add(new AttributeProto { Name = "narrow", Type = AttributeProto.Types.AttributeType.Int, I = 0 });
            n.Attribute.Add(new AttributeProto { Name = "rounding_mode", Type = AttributeProto.Types.AttributeType.String, S = ByteString.CopyFromUtf8("ROUND") });
            return o;
        }
        g.Input.Add(Info("x", width));
        float sx = 1f / 64;
        var cur = Node("QuantizeLinear", "quant_in", "x", Scalar("x_s", sx), Zero("x_zp"));
        for (int l = 0; l < layers; l++)
        {
            var w = new byte[(long)width * width * FileBytesPerWeight(kind)];
            rng.NextBytes(w);
            // Codes of codeStd times inputs of about ±50 over `width` terms: the weight scale keeps a few standard deviations of
            // the sum inside the output's codes, at the input's scale, layer after layer.
            float sw = (float)(32 / (codeStd * 50 * Math.Sqrt(width))), sy = sx;
            if (kind == "ternary")
                for (long i = 0; i < w.Length; i++) w[i] = (byte)(sbyte)(w[i] % 3 - 1);
            if (kind == "int4")
                for (long i = 0; i < w.Length; i += 4) BitConverter.TryWriteBytes(w.AsSpan((int)i, 4), ((w[i] & 15) - 8) * sw);
            var bias = new byte[width * 4];
            for (int j = 0; j < width; j++) BitConverter.GetBytes((float)((rng.NextDouble() - 0.5) * sy * 8)).CopyTo(bias, j * 4);
            var x = Node("DequantizeLinear", $"l{l}_xdq", cur, Scalar($"l{l}_xs", sx), Zero($"l{l}_xzp"));
            var wd = kind == "int4"
                ? Quant($"l{l}_wq", Init($"l{l}_w", DType.Float32, [width, width], w), Scalar($"l{l}_ws", sw), Scalar($"l{l}_wzp", 0), Scalar($"l{l}_wbits", 4))
                : Node("DequantizeLinear", $"l{l}_wdq", Init($"l{l}_w", DType.Int8, [width, width], w), Scalar($"l{l}_ws", sw), Zero($"l{l}_wzp"));
            var y = Node("Add", $"l{l}_add", Node("MatMul", $"l{l}_matmul", x, wd), Init($"l{l}_b", DType.Float32, [width], bias));
            if (l + 1 < layers) y = Node("Relu", $"l{l}_relu", y);
            cur = Node("QuantizeLinear", $"l{l}_quant", y, Scalar($"l{l}_ys", sy), Zero($"l{l}_yzp"));
        }
        var output = Node("DequantizeLinear", "dequant_out", cur, Scalar("out_s", sx), Zero("out_zp"));
        g.Output.Add(Info(output, width));
        return m;
    }

    static ValueInfoProto Info(string name, int width)
    {
        var tt = new TypeProto.Types.Tensor { ElemType = OnnxLoader.FromDType(DType.Float32), Shape = new TensorShapeProto() };
        tt.Shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = 1 });
        tt.Shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = width });
        return new ValueInfoProto { Name = name, Type = new TypeProto { TensorType = tt } };
    }

    /// <summary>Writes a model to <paramref name="path"/>; with <paramref name="external"/>, every initializer of more than
    /// 1 KiB keeps its bytes in weights.bin beside it (ONNX external data: location, offset, length), one after the other.</summary>
    public static void Save(ModelProto m, string path, bool external)
    {
        if (external)
        {
            using var data = File.Create(Path.Combine(Path.GetDirectoryName(Path.GetFullPath(path))!, "weights.bin"));
            foreach (var t in m.Graph.Initializer.Where(t => t.RawData.Length > 1024))
            {
                long offset = data.Position;
                t.RawData.WriteTo(data);
                t.DataLocation = TensorProto.Types.DataLocation.External;
                foreach (var (k, v) in new[] { ("location", "weights.bin"), ("offset", offset.ToString(CultureInfo.InvariantCulture)),
                                               ("length", t.RawData.Length.ToString(CultureInfo.InvariantCulture)) })
                    t.ExternalData.Add(new StringStringEntryProto { Key = k, Value = v });
                t.RawData = ByteString.Empty;
            }
        }
        using var f = File.Create(path);
        m.WriteTo(f);
    }

    /// <summary>Whether a model of <paramref name="parameters"/> weights of <paramref name="kind"/> is written with external data:
    /// when asked, or when its weights would not fit a protobuf file.</summary>
    public static bool External(long parameters, string kind, bool asked) => asked || parameters * FileBytesPerWeight(kind) > InlineMaxBytes;

    /// <summary>Builds the MLP of one size, writes it into <paramref name="work"/> (its weights as external data when
    /// <paramref name="external"/> or too large for protobuf) and compiles it here, phase by phase.</summary>
    public static Row MeasureHere(long parameters, HwConfig cfg, string work, bool external = false, string kind = "int8")
    {
        var (width, layers) = Shape(parameters);
        Directory.CreateDirectory(work);
        var model = Path.Combine(work, "model.onnx");
        external = External((long)width * width * layers, kind, external);
        Generate(width, layers, kind, model, external);
        // The generated model (a byte or four a parameter) is garbage now: collected, and its memory given back to the system, so
        // that the compile's peaks are its own.
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        var clock = new PhaseClock();
        var outDir = Path.Combine(work, "out");
        var c = Flow.Compile(model, cfg, phase: clock.Start);
        Flow.WriteDesignDirectory(c, outDir, Flow.DefaultInputs(c.Graph), model, clock.Start);
        clock.Stop();
        long Size(string rel) => new FileInfo(Path.Combine(outDir, rel)).Length;
        long output = Directory.EnumerateFiles(outDir, "*", SearchOption.AllDirectories).Sum(f => new FileInfo(f).Length);
        return new Row((long)width * width * layers, width, layers, c.Design.Tiles.Problem.Ops.Count, c.Design.Program.Count, output,
            Size("model.hwir") + Size(Printer.ConstantsFile), Size("tb/memory.bin"), clock.Phases, clock.PerPhasePeaks) { Kind = kind, External = external };
    }

    /// <summary>Writes the MLP in a frame of its own, so nothing of the model in memory stays reachable from the caller's while it
    /// compiles (a stack slot of MeasureHere kept the inline model's weights, a byte a parameter, alive for the whole compile).</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    static void Generate(int width, int layers, string kind, string path, bool external) => Save(Mlp(width, layers, kind: kind), path, external);

    /// <summary>Runs one size in a child process (this program, <c>bench compile --one N</c>), killed after
    /// <paramref name="timeout"/>; a child that fails or runs out of time gives a row that says so.</summary>
    public static Row MeasureInChild(long parameters, string? configPath, TimeSpan timeout, string work, bool external = false, string kind = "int8")
    {
        var psi = new ProcessStartInfo { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        var self = Environment.ProcessPath ?? "dotnet";
        psi.FileName = self;
        if (Path.GetFileNameWithoutExtension(self) == "dotnet") psi.ArgumentList.Add(typeof(CompileBench).Assembly.Location);
        foreach (var a in (string[])["bench", "compile", "--one", parameters.ToString(CultureInfo.InvariantCulture), "--work", work]) psi.ArgumentList.Add(a);
        if (configPath is not null) { psi.ArgumentList.Add("--config"); psi.ArgumentList.Add(configPath); }
        if (external) psi.ArgumentList.Add("--external-data");
        psi.ArgumentList.Add("--kind");
        psi.ArgumentList.Add(kind);
        var (width, layers) = Shape(parameters);
        Row Failed(string why) => new((long)width * width * layers, width, layers, 0, 0, 0, 0, 0, [], false, why)
            { Kind = kind, External = External((long)width * width * layers, kind, external) };
        using var p = Process.Start(psi) ?? throw new HwGenException("cannot start a child process for the benchmark");
        var stderr = p.StandardError.ReadToEndAsync();
        var stdout = p.StandardOutput.ReadToEndAsync();
        if (!p.WaitForExit(timeout))
        {
            p.Kill(entireProcessTree: true);
            p.WaitForExit();
            return Failed($"did not finish in {timeout.TotalSeconds:F0} s");
        }
        var line = stdout.Result.Split('\n').FirstOrDefault(l => l.StartsWith(RowPrefix, StringComparison.Ordinal));
        if (p.ExitCode != 0 || line is null)
            return Failed($"exit {p.ExitCode}: {stderr.Result.Split('\n').FirstOrDefault(l => l.Length > 0) ?? "no output"}");
        return JsonSerializer.Deserialize<Row>(line[RowPrefix.Length..]) ?? Failed("unreadable row");
    }

    /// <summary>Measures each size, in a child process each unless <paramref name="inProcess"/>, in a temporary directory
    /// deleted after it; prints a line per size to <paramref name="progress"/>.</summary>
    public static List<Row> Run(IReadOnlyList<long> sizes, HwConfig cfg, string? configPath, bool inProcess, TimeSpan timeout, TextWriter progress, bool external = false, string kind = "int8")
    {
        var rows = new List<Row>();
        foreach (var n in sizes)
        {
            var dir = Path.Combine(Path.GetTempPath(), $"hwgen-bench-{Environment.ProcessId}-{n}");
            try
            {
                var row = inProcess ? MeasureHere(n, cfg, dir, external, kind) : MeasureInChild(n, configPath, timeout, dir, external, kind);
                rows.Add(row);
                progress.WriteLine(row.Failure is { } why ? $"  {M(row.Params)}: {why}"
                    : $"  {M(row.Params)} ({row.Layers} x {row.Width}^2): {S(row.Seconds)} s, peak {Mb(row.PeakBytes)} MB");
            }
            finally
            {
                if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
            }
        }
        return rows;
    }

    public static string Serialize(Row r) => RowPrefix + JsonSerializer.Serialize(r);

    static string Mb(long bytes) => (bytes / 1e6).ToString("F0", CultureInfo.InvariantCulture);
    static string S(double s) => s.ToString(s < 10 ? "F2" : "F1", CultureInfo.InvariantCulture);
    static string M(long p) => (p / 1e6).ToString(p < 10_000_000 ? "F2" : "F1", CultureInfo.InvariantCulture) + "M";

    public static string Markdown(IReadOnlyList<Row> rows, HwConfig cfg, string command, bool external = false, string kind = "int8")
    {
        var sb = new StringBuilder();
        string what = kind switch { "ternary" => "ternary QDQ (int8 codes in {-1, 0, 1}, on the TLMM engine)", "int4" => "4-bit QONNX (float weights behind Quant of bit width 4)", _ => "int8 QDQ" };
        sb.AppendLine($"`{command}`: synthetic {what} MLPs (square layers of the width shown, batch 1; " +
                      $"{(external ? "weights as ONNX external data in weights.bin, memory-mapped" : "weights inline in the .onnx file, as external data in weights.bin (memory-mapped) where they pass 2 GB")}), compiled end to end as `hwgen compile` " +
                      $"does (into a temporary directory), on a {cfg.ArrayRows}x{cfg.ArrayCols} array with the {cfg.Scheduler} scheduler, {Environment.ProcessorCount} cores. " +
                      "Each size runs in a process of its own. Peak RSS of a phase is the resident high-water mark during that phase " +
                      "(VmHWM, reset at its start); the total is the highest. Phases: " + string.Join(", ", Phases) + " (see `CompileBench.Phases`).").AppendLine();
        sb.AppendLine("| params | layers | tasks | instructions | wall s | CPU s | peak RSS MB | µs / param | B RSS / param | output MB | model.hwir + .consts MB | memory.bin MB |");
        sb.AppendLine("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var r in rows)
        {
            if (r.Failure is not null)
            {
                sb.AppendLine($"| {M(r.Params)} | {r.Layers} x {r.Width}² | | | {r.Failure} | | | | | | | |");
                continue;
            }
            sb.AppendLine($"| {M(r.Params)} | {r.Layers} x {r.Width}² | {r.Tasks} | {r.Instructions} | {S(r.Seconds)} | {S(r.CpuSeconds)} | {Mb(r.PeakBytes)} | " +
                          $"{(r.Seconds * 1e6 / r.Params).ToString("F2", CultureInfo.InvariantCulture)} | {(r.PeakBytes / (double)r.Params).ToString("F1", CultureInfo.InvariantCulture)} | " +
                          $"{Mb(r.OutputBytes)} | {Mb(r.HwirBytes)} | {Mb(r.MemoryImageBytes)} |");
        }
        var ok = rows.Where(r => r.Failure is null).ToList();
        foreach (var (title, cell) in new (string, Func<PhaseCost, string>)[] { ("Wall time per phase, s", p => S(p.Seconds)),
                     ("Processor time per phase (user + system, all threads; less sensitive to other load on the machine), s", p => S(p.CpuSeconds)), ("Peak RSS per phase, MB", p => Mb(p.PeakBytes)),
                     ("Managed memory allocated per phase, MB", p => Mb(p.AllocatedBytes)) })
        {
            sb.AppendLine().AppendLine(title + ":").AppendLine();
            sb.AppendLine("| params | " + string.Join(" | ", Phases) + " |");
            sb.AppendLine("|---:|" + string.Concat(Phases.Select(_ => "---:|")));
            foreach (var r in ok)
                sb.AppendLine($"| {M(r.Params)} | " + string.Join(" | ", Phases.Select(ph => r.Phases.FirstOrDefault(p => p.Phase == ph) is { } p ? cell(p) : "")) + " |");
        }
        return sb.ToString();
    }
}
