using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text;
using HwGen.Core;
using HwGen.Onnx.Proto;
using HwGen.Tests.Cli;
using HwGen.Tests.Fuzz;
using Fuzz = HwGen.Tests.Fuzz.Fuzz;
using HwGen.Tests.Support;

namespace HwGen.FuzzDriver;

/// <summary>
/// The fuzz driver. Runs mutated inputs through <see cref="HwGen.Cli.Program.Run"/> in process and reports every case that does
/// not end in exit 0 or one clean error (exit 1, one line "error: ..." naming the input, no stack trace, nothing left behind),
/// that takes longer than the time limit, or that kills the process. The cases run in a child process (this program with
/// <c>--worker</c>), which the driver replaces after a hang (it kills it) or a crash (a stack overflow, an out-of-memory kill).
///
///   dotnet run --project bench/fuzz -c Release -- [--kinds bytes,structure,npy,config,hwir] [--seeds N] [--first S]
///       [--sources TEXT] [--timeout SECONDS] [--report FILE] [--keep DIR]
///   dotnet run --project bench/fuzz -c Release -- --case ID      (one case in this process, with every command's output)
///
/// A case is KIND/SOURCE/MUTATION/SEED; the same id always makes the same input.
/// </summary>
public static class Program
{
    public static readonly string[] Kinds = ["bytes", "structure", "npy", "config", "hwir"];

    public static int Main(string[] args)
    {
        var o = Options.Parse(args);
        if (o.Worker) return Worker.Serve(o.Keep);
        if (o.Inspect is { } file)
        {
            // A model without its tensors' data, as protobuf JSON: to see what a mutation did.
            var m = ModelProto.Parser.ParseFrom(File.ReadAllBytes(file));
            foreach (var t in m.Graph.Initializer) { t.RawData = Google.Protobuf.ByteString.Empty; t.FloatData.Clear(); t.Int32Data.Clear(); t.Int64Data.Clear(); }
            foreach (var a in m.Graph.Node.SelectMany(n => n.Attribute)) if (a.T is { } t) { t.RawData = Google.Protobuf.ByteString.Empty; t.FloatData.Clear(); }
            Console.WriteLine(Google.Protobuf.JsonFormatter.Default.Format(m));
            return 0;
        }
        if (o.Export is { } export)
        {
            // NAME:FILE: a source model as the mutations start from it.
            File.WriteAllBytes(export[(export.LastIndexOf(':') + 1)..], Sources.Model(export[..export.LastIndexOf(':')]));
            return 0;
        }
        if (o.Phases is { } spec)
        {
            // MODEL:BATCH: where a slow case's time goes, phase by phase (wall seconds).
            var (model, batch) = (spec[..spec.LastIndexOf(':')], int.Parse(spec[(spec.LastIndexOf(':') + 1)..]));
            var sw = Stopwatch.StartNew();
            string last = "start";
            void Phase(string p) { Console.WriteLine($"  {last}: {sw.Elapsed.TotalSeconds:F2} s"); last = p; sw.Restart(); }
            var cfg = HwConfig.Default with { Scheduler = "greedy" };
            var c = HwGen.Cli.Flow.Compile(model, cfg, batch: batch, phase: Phase);
            var dir = Path.Combine(Path.GetTempPath(), "hwgen-fuzz-phases");
            HwGen.Cli.Flow.WriteDesignDirectory(c, dir, HwGen.Cli.Flow.DefaultInputs(c.Graph), model, Phase);
            Phase("end");
            Directory.Delete(dir, true);
            return 0;
        }
        if (o.Case is { } id)
        {
            var result = Worker.Run(Case.Parse(id), verbose: true, keep: o.Keep);
            Console.WriteLine(result.Line);
            return result.Failed ? 1 : 0;
        }
        return Driver.Run(o);
    }
}

sealed record Options(string[] Kinds, int Seeds, int First, string? Sources, double Timeout, string? Report, string? Keep, string? Case, bool Worker, string? Inspect, string? Phases = null, string? Export = null)
{
    public static Options Parse(string[] args)
    {
        var o = new Options(Program.Kinds, 200, 0, null, 20, null, null, null, false, null);
        for (int i = 0; i < args.Length; i++)
        {
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            o = args[i] switch
            {
                "--kinds" => o with { Kinds = Next().Split(',') },
                "--seeds" => o with { Seeds = int.Parse(Next()) },
                "--first" => o with { First = int.Parse(Next()) },
                "--sources" => o with { Sources = Next() },
                "--timeout" => o with { Timeout = double.Parse(Next(), System.Globalization.CultureInfo.InvariantCulture) },
                "--report" => o with { Report = Next() },
                "--keep" => o with { Keep = Next() },
                "--case" => o with { Case = Next() },
                "--worker" => o with { Worker = true },
                "--inspect" => o with { Inspect = Next() },
                "--phases" => o with { Phases = Next() },
                "--export" => o with { Export = Next() },
                _ => throw new ArgumentException($"unknown option {args[i]}"),
            };
        }
        if (o.Kinds.Except(Program.Kinds).FirstOrDefault() is { } bad) throw new ArgumentException($"unknown kind {bad} (known: {string.Join(", ", Program.Kinds)})");
        return o;
    }
}

/// <summary>One input: <see cref="Kind"/> of damage, the file it starts from, the mutation (or "-"), the seed.</summary>
sealed record Case(string Kind, string Source, string Mutation, int Seed)
{
    public string Id => $"{Kind}/{Source}/{Mutation}/{Seed}";

    public static Case Parse(string id)
    {
        var p = id.Split('/');
        if (p.Length < 4) throw new ArgumentException($"a case is KIND/SOURCE/MUTATION/SEED, got {id}");
        return new Case(p[0], string.Join('/', p[1..^2]), p[^2], int.Parse(p[^1]));
    }

    /// <summary>The cases of one kind for seeds [first, first + count): sources and mutations in turn, so every pair comes up.</summary>
    public static IEnumerable<Case> Of(string kind, int first, int count, string? sourceFilter)
    {
        var sources = Sources.For(kind).Where(s => sourceFilter is null || s.Contains(sourceFilter, StringComparison.Ordinal)).ToList();
        if (sources.Count == 0) yield break;
        var mutations = kind switch
        {
            "structure" => Fuzz.All.Concat(Mutators.Structure).Select(m => m.Name).ToList(),
            "npy" or "config" => ["tests", "driver"],
            _ => new List<string> { "-" },
        };
        for (int seed = first; seed < first + count; seed++)
            yield return new Case(kind, sources[seed / mutations.Count % sources.Count], mutations[seed % mutations.Count], seed);
    }
}

/// <summary>The inputs the mutations start from.</summary>
static class Sources
{
    /// <summary>Models the tests build, for forms the examples lack: QOperator (QLinearMatMul, MatMulInteger), residual adds,
    /// multi-head attention with a causal mask, a positional constant, nonlinear ops after a Gemm.</summary>
    static readonly Dictionary<string, Func<byte[]>> Synthetic = new()
    {
        ["one_layer"] = () => { using var dir = new TempDir(); return File.ReadAllBytes(BadInputTests.Model(dir)); },
        ["synth/qlinearmatmul"] = () => QdqModels.Mlp(1, 2, [16, 12, 8], QdqStyle.QLinearMatMul).Bytes(),
        ["synth/matmulinteger"] = () => QdqModels.Mlp(2, 2, [16, 12, 8], QdqStyle.MatMulInteger).Bytes(),
        ["synth/residual"] = () => ResidualModels.Build(3, 2, 16, 2, reluBetweenQdq: true).Bytes(),
        ["synth/attention"] = () => AttentionModels.MultiHead(4, 1, 8, 16, 2, mask: AttentionModels.MaskKind.Causal).Bytes(),
        ["synth/positional"] = () => PositionalModels.Build(5, 1, 8, 16, ConstantStyle.Quantized).Bytes(),
        ["synth/layernorm-gelu"] = () => NonlinearModels.Chain([NonlinearKind.LayerNorm, NonlinearKind.Gelu, NonlinearKind.Softmax], 2, 16, gemm: true).Bytes(),
    };

    /// <summary>Every example model and torch export, by short name (examples/DIR/model.onnx is DIR, model_X.onnx is DIR/X,
    /// the torch exports are torch/NAME), and the tests' one-layer model.</summary>
    public static readonly SortedDictionary<string, string> Onnx = Find();

    static SortedDictionary<string, string> Find()
    {
        var d = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var f in Directory.GetFiles(Path.Combine(Repo.Root, "examples"), "model*.onnx", SearchOption.AllDirectories))
        {
            var dir = Path.GetFileName(Path.GetDirectoryName(f)!);
            var stem = Path.GetFileNameWithoutExtension(f);
            d[stem == "model" ? dir : $"{dir}/{stem["model_".Length..]}"] = f;
        }
        foreach (var f in Directory.GetFiles(Path.Combine(Repo.Root, "tests", "HwGen.Tests", "Onnx", "TorchExports"), "*.onnx"))
            d["torch/" + Path.GetFileNameWithoutExtension(f)] = f;
        foreach (var name in Synthetic.Keys) d[name] = "";
        return d;
    }


    public static IEnumerable<string> For(string kind) => kind switch
    {
        "bytes" or "structure" => Onnx.Keys,
        "npy" => ["mlp_digits", "ffn_digits", "torch_encoder_digits/op17"],
        "config" => ["mlp_digits", "ffn_digits", "ternary_mlp_digits/qdq", "tiny_vit_digits"],
        "hwir" => Directory.GetFiles(Path.Combine(Repo.Root, "tests", "HwGen.Tests", "Lit"), "*.hwir").Select(f => "lit:" + Path.GetFileNameWithoutExtension(f)).Order(StringComparer.Ordinal)
            .Concat(["dump:mlp_digits", "dump:ffn_digits", "dump:tiny_vit_digits", "dump:qonnx_mlp_digits",
                "out:mlp_digits", "out:ternary_mlp_digits/qdq", "out:tiny_vit_digits", "out:qonnx_mlp_digits"]),
        _ => [],
    };

    static readonly ConcurrentDictionary<string, byte[]> Cache = new();

    public static byte[] Model(string name) => Cache.GetOrAdd(name, n => Synthetic.TryGetValue(n, out var make) ? make() : File.ReadAllBytes(Onnx[n]));

    /// <summary>The first graph input's shape (a symbolic dim as 1).</summary>
    public static int[] InputShape(byte[] model) =>
        ModelProto.Parser.ParseFrom(model).Graph.Input[0].Type.TensorType.Shape.Dim.Select(d => d.HasDimValue ? (int)d.DimValue : 1).ToArray();

    /// <summary>The model's layer names (its nodes' names), for configs that name layers.</summary>
    public static List<string> Layers(byte[] model) =>
        HwGen.Onnx.OnnxLoader.NodeNames(ModelProto.Parser.ParseFrom(model).Graph).Where(n => n.Length > 0).ToList();

    /// <summary>Textual IR: a lit test file, a model's IR as imported (dump:, hwgen compile --dump-ir, its first file), or the
    /// model.hwir a compile writes (out:, its long lists const references into <see cref="Consts"/>), made once.</summary>
    public static string Ir(string name) => Encoding.UTF8.GetString(Cache.GetOrAdd("ir:" + name, n =>
    {
        if (name.StartsWith("lit:")) return File.ReadAllBytes(Path.Combine(Repo.Root, "tests", "HwGen.Tests", "Lit", name[4..] + ".hwir"));
        using var dir = new TempDir();
        File.WriteAllBytes(dir.File("model.onnx"), Model(name[(name.IndexOf(':') + 1)..]));
        File.WriteAllText(dir.File("hw.json"), """{ "scheduler": "greedy" }""");
        var (exit, _, err) = CliRunner.Run("compile", dir.File("model.onnx"), "--config", dir.File("hw.json"), "--dump-ir", dir.File("ir"), "-o", dir.File("out"));
        if (exit != 0) throw new InvalidOperationException($"{name}: {err}");
        Cache["consts:" + name] = File.Exists(dir.File("out/model.consts")) ? File.ReadAllBytes(dir.File("out/model.consts")) : [];
        return name.StartsWith("out:") ? File.ReadAllBytes(dir.File("out/model.hwir"))
            : File.ReadAllBytes(Directory.GetFiles(dir.File("ir"), "*.hwir").Order(StringComparer.Ordinal).First());
    }));

    /// <summary>The model.consts beside an out: source's model.hwir.</summary>
    public static byte[] Consts(string name)
    {
        Ir(name);
        return Cache.GetValueOrDefault("consts:" + name) ?? [];
    }
}
