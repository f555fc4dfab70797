using System.Text;
using Google.Protobuf;
using HwGen.Core;
using HwGen.Onnx;
using HwGen.Onnx.Proto;
using HwGen.Tests.Cli;
using HwGen.Tests.Passes;
using HwGen.Tests.Support;
using AT = HwGen.Onnx.Proto.AttributeProto.Types.AttributeType;
using DT = HwGen.Onnx.Proto.TensorProto.Types.DataType;

namespace HwGen.Tests.Fuzz;

/// <summary>
/// The fuzzer: seeded, deterministic mutations of models, configs and .npy inputs, each run through the CLI in process.
/// A case is (family, source, seed); the same triple always makes the same input, so a case the fuzzer finds failing
/// is kept as a named regression (<see cref="FuzzRegressionTests"/>). Every run must end in exit 0 (where the mutation can
/// leave a valid input) or in one clean error (<see cref="CleanFailure"/>), never in an internal error.
/// </summary>
public static class Fuzz
{
    /// <summary>Models the structural mutations start from: the examples (QDQ and QONNX), and a one-layer model whose
    /// constants are initializers.</summary>
    public static readonly string[] Sources = ["mlp_digits", "ffn_digits", "qonnx_mlp_digits", "one_layer"];

    /// <summary>The greedy scheduler keeps the runs that compile fast.</summary>
    const string FuzzConfig = """{ "scheduler": "greedy" }""";

    /// <summary>A transformer torch exported (<see cref="FuzzTransformerTests"/>).</summary>
    public const string Transformer = "torch_encoder_digits";

    public static byte[] SourceBytes(string source, TempDir dir) => File.ReadAllBytes(source switch
    {
        "one_layer" => BadInputTests.Model(dir),
        Transformer => System.IO.Path.Combine(Repo.Root, "examples", Transformer, "model_op17.onnx"),
        "tiny_vit_lambda" => System.IO.Path.Combine(Repo.Root, "examples", "tiny_vit_digits", "model_lambda.onnx"),
        _ => Repo.Example(source),
    });

    /// <summary>Runs a compile of <paramref name="model"/> bytes (and optionally a config and an input) and checks the outcome;
    /// an error must name one of <paramref name="files"/> (default model.onnx) and, when there are any, one of
    /// <paramref name="places"/> (the node or value the mutation changed).</summary>
    public static void Check(TempDir dir, byte[] model, bool mayPass, string? config = null, byte[]? npy = null, string[]? files = null,
        string[]? places = null)
    {
        File.WriteAllBytes(dir.File("model.onnx"), model);
        File.WriteAllText(dir.File("hw.json"), config ?? FuzzConfig);
        string[] args = ["compile", dir.File("model.onnx"), "--config", dir.File("hw.json")];
        if (npy is not null)
        {
            File.WriteAllBytes(dir.File("x.npy"), npy);
            args = [.. args, "--input", dir.File("x.npy")];
        }
        var line = CleanFailure.Run(dir, args, mayPass);
        if (Environment.GetEnvironmentVariable("HWGEN_FUZZ_LOG") is { } log) lock (ShapeRe) File.AppendAllText(log, (line ?? "PASS") + "\n");
        if (line is null) return;
        files ??= ["model.onnx"];
        Assert.True(files.Any(line.Contains), $"the error names none of {string.Join(", ", files)}: {line}");
        if (places is { Length: > 0 }) Assert.True(places.Any(line.Contains), $"the error names none of {string.Join(", ", places)}: {line}");
    }

    /// <summary>Runs ONNX semantics (<c>hwgen run --semantics onnx</c>) on <paramref name="model"/> (written by <see cref="Check"/>)
    /// with a finite input of the source's input shape: the golden evaluator reaches ops the compile folds or refuses. An error
    /// names the model, or the input when the mutated model takes another shape.</summary>
    public static void CheckRun(TempDir dir, byte[] source)
    {
        var input = ModelProto.Parser.ParseFrom(source).Graph.Input[0].Type.TensorType.Shape.Dim.Select(d => d.HasDimValue ? (int)d.DimValue : 1).ToArray();
        Npy.Write(dir.File("in.npy"), new Tensor(DType.Float32, input, Enumerable.Range(0, ShapeUtil.Size(input)).Select(i => (double)(i % 5) / 4).ToArray()));
        var line = CleanFailure.Run(dir, ["run", dir.File("model.onnx"), "--input", dir.File("in.npy"), "--output", dir.File("y.npy"), "--semantics", "onnx"],
            dir.File("y.npy"), mayPass: true);
        if (line is not null) Assert.True(line.Contains("model.onnx") || line.Contains("in.npy: input '"), line);
    }

    // ---- one case of each family ----

    public static void RunBytes(string source, int seed)
    {
        using var dir = new TempDir();
        var src = SourceBytes(source, dir);
        Check(dir, MutateBytes(src, new Random(seed)), mayPass: true);
        CheckRun(dir, src);
    }

    public static void RunStructure(string mutation, string source, int seed)
    {
        using var dir = new TempDir();
        var m = Find(mutation);
        var src = SourceBytes(source, dir);
        if (MutateStructure(src, m, new Random(seed)) is not { } mutated) return;
        Check(dir, mutated.Bytes, mutated.MayPass, places: mutated.Places);
        if (mutated.MayPass) CheckRun(dir, src);
    }

    public static void RunConfig(int seed)
    {
        using var dir = new TempDir();
        Check(dir, SourceBytes("mlp_digits", dir), mayPass: true, config: MutateConfig(new Random(seed)), files: ["hw.json", "model.onnx"]);
    }

    public static void RunNpy(int seed)
    {
        using var dir = new TempDir();
        Check(dir, SourceBytes("mlp_digits", dir), mayPass: true, npy: MutateNpy([1, 64], new Random(seed)), files: ["x.npy"]);
    }

    // ---- byte level ----

    /// <summary>One to three byte-level edits. Half the seeds only flip or overwrite bytes in place (the file mostly still
    /// parses, with changed weights, scales, dims or names); the others also cut, insert, delete or repeat ranges.</summary>
    public static byte[] MutateBytes(byte[] src, Random r)
    {
        var b = src.ToList();
        bool inPlace = r.Next(2) == 0;
        for (int edits = r.Next(1, 4); edits > 0 && b.Count > 2; edits--)
        {
            int at = r.Next(b.Count), len = Math.Min(b.Count - at, 1 + r.Next(16));
            switch (r.Next(inPlace ? 3 : 7))
            {
                case 0: b[at] ^= (byte)(1 << r.Next(8)); break;
                case 1: b[at] = (byte)r.Next(256); break;
                case 2: b[at] = r.Next(2) == 0 ? (byte)0xFF : (byte)0; break;
                case 3: b.RemoveRange(at, b.Count - at); break;
                case 4: b.InsertRange(at, Enumerable.Range(0, len).Select(_ => (byte)r.Next(256))); break;
                case 5: b.RemoveRange(at, len); break;
                default: b.InsertRange(at, b.GetRange(at, len)); break;
            }
        }
        return b.ToArray();
    }

    // ---- structural ----

    /// <summary>A named structural mutation; each makes an invalid model (so the compile must fail) unless <see cref="MayPass"/>.
    /// Returns where the error must point, or null when it has nothing to mutate in the model.</summary>
    public sealed record Mutation(string Name, Func<ModelProto, Random, Target?> Apply, bool MayPass = false);

    /// <summary>What a mutation changed, which its error must name besides the file: one of <paramref name="Nodes"/> (held by
    /// reference: their names as messages give them, <see cref="OnnxLoader.NodeNames"/>, are read after the mutation) or of
    /// <paramref name="Values"/> (tensors, graph inputs and outputs, quoted as messages quote them). Neither: anywhere (a
    /// model-wide change, or one whose error shows downstream). <paramref name="MayPass"/>: this case may leave a valid model.</summary>
    public sealed record Target(IReadOnlyList<NodeProto> Nodes, IReadOnlyList<string> Values, bool MayPass = false)
    {
        public static readonly Target Anywhere = new([], []);
        public static Target At(NodeProto n) => new([n], []);
    }

    /// <summary>A mutated model, whether it may be valid, and what its error must name (one of; none: anything in the file).</summary>
    public sealed record Mutated(byte[] Bytes, bool MayPass, string[] Places);

    static T Pick<T>(IReadOnlyList<T> xs, Random r) => xs[r.Next(xs.Count)];

    /// <summary>Constant tensors by value name: initializers and Constant nodes' value attributes.</summary>
    static Dictionary<string, TensorProto> Constants(ModelProto m)
    {
        var c = m.Graph.Initializer.ToDictionary(t => t.Name);
        foreach (var n in m.Graph.Node.Where(n => n.OpType == "Constant" && n.Attribute.Count == 1 && n.Attribute[0].T is not null))
            c[n.Output[0]] = n.Attribute[0].T;
        return c;
    }

    static long Elements(TensorProto t) => t.Dims.Aggregate(1L, (a, d) => a * d);

    /// <summary>Nodes whose outputs something uses (a later node or a graph output).</summary>
    static List<NodeProto> Used(ModelProto m)
    {
        var used = m.Graph.Node.SelectMany(n => n.Input).Concat(m.Graph.Output.Select(o => o.Name)).ToHashSet();
        return m.Graph.Node.Where(n => n.Output.Any(used.Contains)).ToList();
    }

    /// <summary>The quantizers: QuantizeLinear, DequantizeLinear and QONNX's (whose input 1 is a scale and input 2 a zero point too).</summary>
    static List<NodeProto> QuantNodes(ModelProto m) => m.Graph.Node
        .Where(n => n.OpType is "QuantizeLinear" or "DequantizeLinear" || (QonnxQuant.Domains.Contains(n.Domain) && QonnxQuant.Ops.Contains(n.OpType))).ToList();

    /// <summary>The scale (input 1) or zero point (input 2) tensors, by value name, of the quantizers that have constant ones.</summary>
    static List<KeyValuePair<string, TensorProto>> QuantParams(ModelProto m, int input)
    {
        var c = Constants(m);
        return QuantNodes(m).Where(n => n.Input.Count > input && c.ContainsKey(n.Input[input])).Select(n => n.Input[input]).Distinct()
            .Select(v => KeyValuePair.Create(v, c[v])).ToList();
    }

    /// <summary>A constant value: its name, the Constant node that makes it and the nodes that use it.</summary>
    static Target AtValue(ModelProto m, string value) =>
        new(m.Graph.Node.Where(n => n.Output.Contains(value) || n.Input.Contains(value)).ToList(), [value]);

    /// <summary>The nodes that use any of <paramref name="values"/>.</summary>
    static List<NodeProto> Users(ModelProto m, IEnumerable<string> values) =>
        m.Graph.Node.Where(n => n.Input.Intersect(values).Any()).ToList();

    static void SetFloat(TensorProto t, int i, float v)
    {
        if (t.RawData.IsEmpty) { t.FloatData[i] = v; return; }
        var raw = t.RawData.ToByteArray();
        BitConverter.GetBytes(v).CopyTo(raw, 4 * i);
        t.RawData = ByteString.CopyFrom(raw);
    }

    public static readonly Mutation[] Mutations =
    [
        new("remove-node", (m, r) =>
        {
            var u = Used(m);
            if (u.Count == 0) return null;
            var n = Pick(u, r);
            m.Graph.Node.Remove(n);
            return new(Users(m, n.Output), n.Output);   // the first user of its output, or the graph output
        }),
        new("duplicate-node", (m, r) =>
        {
            int i = r.Next(m.Graph.Node.Count);
            var copy = m.Graph.Node[i].Clone();
            m.Graph.Node.Insert(i + 1, copy);
            return new([copy], copy.Output);
        }),
        new("node-after-its-users", (m, r) =>
        {
            var u = Used(m).Where(n => n != m.Graph.Node[^1]).ToList();
            if (u.Count == 0) return null;
            var n = Pick(u, r);
            m.Graph.Node.Remove(n);
            m.Graph.Node.Add(n);
            return new([n, .. Users(m, n.Output)], n.Output);
        }),
        new("wrong-dims", (m, r) =>
        {
            var ts = Constants(m).Where(t => Elements(t.Value) > 0).ToList();
            if (ts.Count == 0) return null;
            var (name, t) = Pick(ts, r);
            switch (t.Dims.Count == 0 ? 0 : r.Next(4))
            {
                case 0: t.Dims.Add(2); break;
                case 1: t.Dims[r.Next(t.Dims.Count)] += 1; break;
                case 2: t.Dims[r.Next(t.Dims.Count)] = -1; break;
                default: t.Dims[r.Next(t.Dims.Count)] = 1L << 33; break;
            }
            return AtValue(m, name);
        }),
        new("unsupported-type", (m, r) =>
        {
            var (name, t) = Pick(Constants(m).ToList(), r);
            t.DataType = (int)Pick(new[] { DT.Undefined, DT.Float16, DT.String, DT.Bfloat16, DT.Complex64, DT.Uint64, (DT)99 }, r);
            return AtValue(m, name);
        }),
        new("scale-value", (m, r) =>
        {
            var s = QuantParams(m, 1).Where(t => t.Value.DataType == (int)DT.Float).ToList();
            if (s.Count == 0) return null;
            var (name, t) = Pick(s, r);
            SetFloat(t, r.Next((int)Elements(t)), Pick(new[] { float.NaN, 0f, -0.05f, float.PositiveInfinity, float.NegativeInfinity, -1e-30f }, r));
            return AtValue(m, name);
        }),
        new("computed-non-finite", (m, r) =>
        {
            // A float constant some node reads (an initializer, or a Constant node's tensor, made an initializer first) becomes a
            // constant subgraph the importer folds, with a NaN (Sqrt of -1) or an Inf (a division by zero) at one element: the
            // validator sees no stored NaN, the importer must refuse the computed one.
            var used = m.Graph.Node.SelectMany(n => n.Input).ToHashSet();
            var fs = Constants(m).Where(c => c.Value.DataType == (int)DT.Float && Elements(c.Value) > 0 && used.Contains(c.Key)).ToList();
            if (fs.Count == 0) return null;
            var (name, t) = Pick(fs, r);
            if (m.Graph.Node.FirstOrDefault(n => n.OpType == "Constant" && n.Output.Contains(name)) is { } constant)
            {
                m.Graph.Node.Remove(constant);
                m.Graph.Initializer.Add(new TensorProto(t) { Name = name });
            }
            var added = FoldedConstants.Compute(m, name, r.Next(2) == 0 ? Computed.NaN : Computed.Inf, r.Next((int)Elements(t)));
            return new([added[0], .. Users(m, [name])], [name]);   // the node that makes the NaN or Inf, or one that reads it
        }),
        new("scale-type", (m, r) =>
        {
            var s = QuantParams(m, 1).Where(t => !t.Value.RawData.IsEmpty).ToList();
            if (s.Count == 0) return null;
            var (name, t) = Pick(s, r);
            if (r.Next(2) == 0) t.DataType = (int)DT.Int32;
            else
            {
                t.DataType = (int)DT.Double;
                t.RawData = ByteString.CopyFrom(new byte[8 * Elements(t)]);
            }
            return AtValue(m, name);
        }),
        new("zero-point-out-of-range", (m, r) =>
        {
            var z = QuantParams(m, 2).Where(t => t.Value.DataType is (int)DT.Int8 or (int)DT.Uint8).ToList();
            if (z.Count == 0) return null;
            var (name, t) = Pick(z, r);
            t.RawData = ByteString.Empty;
            t.Int32Data.Clear();
            t.Int32Data.AddRange(Enumerable.Repeat(0, (int)Elements(t)));
            t.Int32Data[r.Next(t.Int32Data.Count)] = Pick(new[] { 300, -129, 256, 1_000_000, int.MinValue }, r);
            return AtValue(m, name);
        }),
        new("zero-point-count", (m, r) =>
        {
            var z = QuantParams(m, 2).Where(t => !t.Value.RawData.IsEmpty && t.Value.DataType is (int)DT.Int8 or (int)DT.Uint8).ToList();
            if (z.Count == 0) return null;
            var (name, t) = Pick(z, r);
            if (t.Dims.Count == 1 && t.Dims[0] > 1)
            {
                t.Dims[0] -= 1;
                t.RawData = ByteString.CopyFrom(t.RawData.Span[..^1]);
            }
            else
            {
                t.Dims.Clear();
                t.Dims.Add(2);
                t.RawData = ByteString.CopyFrom(new byte[2]);
            }
            return AtValue(m, name);
        }),
        new("opset", (m, r) =>
        {
            switch (r.Next(5))
            {
                case 0: m.OpsetImport.Clear(); break;
                case 1:
                    m.OpsetImport[0].Version = r.Next(-1, 10);
                    // Versions 1 to 9 predate QuantizeLinear (opset 10); a model without Q/DQ nodes (QONNX's) may be valid there.
                    return Target.Anywhere with { MayPass = m.OpsetImport[0].Version >= 1 && QuantNodes(m).All(n => n.Domain != "") };
                case 2: m.OpsetImport[0].Version = 1000; break;
                case 3: m.OpsetImport.Add(m.OpsetImport[0].Clone()); break;
                default: m.OpsetImport[0].Domain = "com.hwgen.fuzz"; break;
            }
            return Target.Anywhere;
        }),
        new("graph-input-dim", (m, r) =>
        {
            var dims = m.Graph.Input[0].Type.TensorType.Shape.Dim;
            dims[r.Next(dims.Count)].DimValue = Pick(new[] { -5L, (1L << 32) + 64, 1L << 40, 1L << 31, 1L << 25 }, r);
            return new([], [m.Graph.Input[0].Name]);
        }),
        new("graph-outputs", (m, r) =>
        {
            switch (r.Next(3))
            {
                case 0: m.Graph.Output.Clear(); return Target.Anywhere;
                case 1: m.Graph.Output.Add(m.Graph.Output[0].Clone()); break;
                default: m.Graph.Output[0].Name = "never_computed"; break;
            }
            return new([], [m.Graph.Output[0].Name]);
        }),
        new("attribute", (m, r) =>
        {
            var n = Pick(m.Graph.Node.ToList(), r);
            var a = n.Attribute.Count > 0 ? Pick(n.Attribute.ToList(), r) : null;
            switch (a is null ? 3 + r.Next(2) : r.Next(5))
            {
                case 0: n.Attribute.Add(a!.Clone()); break;
                case 1: a!.Type = a.Type == AT.String ? AT.Float : AT.String; break;
                case 2: a!.Type = AT.Undefined; break;
                case 3: n.Attribute.Add(new AttributeProto { Name = "hwgen_fuzz", Type = AT.Int, I = 1 }); break;
                default:
                    n.Attribute.Add(new AttributeProto { Name = "axis", Type = AT.Int, I = 0 });
                    n.Attribute.Add(new AttributeProto { Name = "axis", Type = AT.Int, I = 1 });
                    break;
            }
            return Target.At(n);
        }),
        new("input-count", (m, r) =>
        {
            var n = Pick(m.Graph.Node.Where(n => n.OpType != "Constant").ToList(), r);
            if (r.Next(2) == 0) n.Input.Clear();
            else n.Input.AddRange(Enumerable.Repeat(n.Input[0], 9));
            return Target.At(n);
        }),
        new("unknown-domain", (m, r) =>
        {
            var n = Pick(m.Graph.Node.ToList(), r);
            n.Domain = "com.hwgen.fuzz";
            return Target.At(n);
        }),
        new("empty-constant", (m, r) =>
        {
            var cs = m.Graph.Node.Where(n => n.OpType == "Constant" && n.Attribute.Count == 1).ToList();
            if (cs.Count == 0) return null;
            var n = Pick(cs, r);
            var a = n.Attribute[0];
            a.Name = "value";
            a.Type = AT.Tensor;
            a.T = r.Next(2) == 0 ? null : new TensorProto();
            return Target.At(n);
        }),
    ];

    /// <summary>Mutations that may leave a valid model: they reach the importer and the passes with odd but legal inputs.</summary>
    public static readonly Mutation[] MayPassMutations =
    [
        new("attribute-value", (m, r) =>
        {
            var attrs = m.Graph.Node.SelectMany(n => n.Attribute).Where(a => a.Type is AT.Int or AT.Float or AT.Ints).ToList();
            if (attrs.Count == 0) return null;
            var a = Pick(attrs, r);
            if (a.Type == AT.Int) a.I = Pick(new[] { -3L, -1, 0, 1, 2, 5, 1000, long.MinValue }, r);
            else if (a.Type == AT.Float) a.F = Pick(new[] { 0f, -1f, float.NaN, 1e30f, 1e-30f }, r);
            else if (a.Ints.Count > 0) a.Ints[r.Next(a.Ints.Count)] = Pick(new[] { -1L, 0, 1, 2, 7, 1L << 40 }, r);
            else a.Ints.Add(0);
            return Target.Anywhere;
        }, MayPass: true),
        new("integer-constant", (m, r) =>
        {
            var ts = Constants(m).Values.Where(t => !t.RawData.IsEmpty && t.DataType is (int)DT.Int64 or (int)DT.Int32 or (int)DT.Int8 or (int)DT.Uint8).ToList();
            if (ts.Count == 0) return null;
            var t = Pick(ts, r);
            var raw = t.RawData.ToByteArray();
            int w = raw.Length / (int)Math.Max(1, Elements(t)), i = r.Next(raw.Length / w);
            long v = Pick(new[] { 0L, -1, 1, 2, 127, -128, 255, 1L << 31, long.MaxValue }, r);
            BitConverter.GetBytes(v).AsSpan(0, w).CopyTo(raw.AsSpan(i * w, w));
            t.RawData = ByteString.CopyFrom(raw);
            return Target.Anywhere;
        }, MayPass: true),
        new("graph-input-size", (m, r) =>
        {
            var dims = m.Graph.Input[0].Type.TensorType.Shape.Dim;
            var d = dims[r.Next(dims.Count)];
            if (r.Next(4) == 0) d.DimParam = "N";
            else d.DimValue = Pick(new[] { 0L, 1, 2, 3, 63, 65, 128 }, r);
            return Target.Anywhere;
        }, MayPass: true),
        new("rewire-input", (m, r) =>
        {
            // An input of a node now reads another value defined before it: other types, shapes and quantizations.
            var g = m.Graph;
            int i = r.Next(g.Node.Count);
            var n = g.Node[i];
            if (n.Input.Count == 0) return null;
            var earlier = g.Initializer.Select(t => t.Name).Concat(g.Input.Select(v => v.Name))
                .Concat(g.Node.Take(i).SelectMany(p => p.Output)).Where(x => x.Length > 0).ToList();
            if (earlier.Count == 0) return null;
            n.Input[r.Next(n.Input.Count)] = Pick(earlier, r);
            return Target.Anywhere;
        }, MayPass: true),
        new("op-type", (m, r) =>
        {
            string[][] families =
            [
                ["Add", "Sub", "Mul", "Div", "MatMul", "Pow"], ["Relu", "Sigmoid", "Tanh", "Exp", "Sqrt", "Erf", "Identity", "Softmax", "Flatten"],
                ["QuantizeLinear", "DequantizeLinear"], ["Gemm", "MatMul"],
            ];
            var n = Pick(m.Graph.Node.Where(n => families.Any(f => f.Contains(n.OpType))).ToList(), r);
            n.OpType = Pick(families.First(f => f.Contains(n.OpType)), r);
            n.Attribute.Clear();
            return Target.Anywhere;
        }, MayPass: true),
    ];

    public static IEnumerable<Mutation> All => Mutations.Concat(MayPassMutations);

    public static Mutation Find(string name) => All.Single(x => x.Name == name);

    /// <summary>The source model after one structural mutation, or null when the mutation has nothing to work on there.
    /// Its places are the target's nodes as messages name them in the mutated model (nodes it removed are not) and its values.</summary>
    public static Mutated? MutateStructure(byte[] src, Mutation mutation, Random r)
    {
        var m = ModelProto.Parser.ParseFrom(src);
        if (mutation.Apply(m, r) is not { } target) return null;
        var names = OnnxLoader.NodeNames(m.Graph);
        var nodes = target.Nodes.Select(n => Enumerable.Range(0, m.Graph.Node.Count).FirstOrDefault(i => ReferenceEquals(m.Graph.Node[i], n), -1))
            .Where(i => i >= 0).Select(i => $"node '{names[i]}'");
        return new Mutated(m.ToByteArray(), mutation.MayPass || target.MayPass, [.. nodes, .. target.Values.Select(v => $"'{v}'")]);
    }

    // ---- configs ----

    /// <summary>A config of one to three fields from <see cref="HwConfig.Fields"/> with edge values, wrong types or unknown
    /// names, or broken JSON; always greedy scheduling unless the scheduler is the field being fuzzed.</summary>
    public static string MutateConfig(Random r)
    {
        if (r.Next(10) == 0) return Pick(new[] { "", "{", "[]", "null", "{\"arrayRows\": }", "{\"arrayRows\": 1e400}", "\"x\"" }, r);
        var fields = new Dictionary<string, string> { ["scheduler"] = "\"greedy\"" };
        // Half the values are in range for the sizes (small arrays and scratchpads, odd ports), half are not.
        string[] valid = ["1", "2", "3", "4", "7", "8", "16", "32", "64", "128", "256", "512", "1024", "4096", "65536"];
        string[] invalid = ["0", "-1", "65", "67108865", "2147483647", "2147483648", "1099511627776", "1.5", "0.001", "1e9",
            "\"text\"", "null", "true", "[]", "{}"];
        for (int k = r.Next(1, 4); k > 0; k--)
        {
            var name = r.Next(20) == 0 ? "hwgenFuzz" : Pick(HwConfig.Fields, r).Name;
            fields[name] = name == "scheduler" ? Pick(new[] { "\"ilp\"", "\"greedy\"", "\"\"", "3" }, r) : Pick(r.Next(2) == 0 ? valid : invalid, r);
        }
        if (fields["scheduler"] == "\"ilp\"") fields["ilpTimeLimitSeconds"] = "0.1";
        return "{" + string.Join(", ", fields.Select(f => $"\"{f.Key}\": {f.Value}")) + "}";
    }

    // ---- .npy ----

    /// <summary>A float32 input of <paramref name="shape"/> as .npy bytes, then damaged: its version, header length, shape text,
    /// dtype, data (cut, NaN) or random bytes.</summary>
    public static byte[] MutateNpy(int[] shape, Random r)
    {
        var path = Path.GetTempFileName();
        Npy.Write(path, new Tensor(DType.Float32, shape, Enumerable.Range(0, ShapeUtil.Size(shape)).Select(i => (double)(i % 7) / 8).ToArray()));
        var b = File.ReadAllBytes(path).ToList();
        File.Delete(path);
        int headerLength = BitConverter.ToUInt16(b.ToArray(), 8), dataStart = 10 + headerLength;
        var header = Encoding.ASCII.GetString(b.ToArray(), 10, headerLength);
        byte[] WithHeader(string h) => [.. b.Take(8), .. BitConverter.GetBytes((ushort)h.Length), .. Encoding.ASCII.GetBytes(h), .. b.Skip(dataStart)];
        byte[] WithLength(int len) { var c = b.ToArray(); BitConverter.GetBytes((ushort)len).CopyTo(c, 8); return c; }
        switch (r.Next(8))
        {
            case 0: { var c = b.ToArray(); c[6] = (byte)r.Next(256); return c; }
            case 1: return WithLength(r.Next(2) == 0 ? r.Next(65536) : headerLength + r.Next(-3, 4));
            case 2:
            {
                var shapeText = Pick(new[] { "(1L, 64L)", "(-1, 64)", "(99999999999999999999, 64)", "(4294967360,)", "(65536, 65536)", "()",
                    "(64,)", "(1, 64, 1)", "(0, 64)", "(1, x)", "(,)", "(1,, 64)" }, r);
                return WithHeader(ShapeRe.Replace(header, $"'shape': {shapeText}"));
            }
            case 3:
                return WithHeader(header.Replace("'<f4'", Pick(new[] { "'>f4'", "'<f8'", "'|u1'", "'<i8'", "'<U3'", "'O'", "''" }, r)));
            case 4: return b.Take(r.Next(b.Count)).ToArray();
            case 5:
            {
                var c = b.ToArray();
                int i = dataStart + 4 * r.Next((c.Length - dataStart) / 4);
                BitConverter.GetBytes(r.Next(2) == 0 ? float.NaN : float.NegativeInfinity).CopyTo(c, i);
                return c;
            }
            case 6: return WithHeader(header.Replace("False", "True"));
            default:
            {
                var c = b.ToArray();
                for (int k = r.Next(1, 6); k > 0; k--) c[r.Next(Math.Min(c.Length, dataStart))] = (byte)r.Next(256);
                return c;
            }
        }
    }

    static readonly System.Text.RegularExpressions.Regex ShapeRe = new(@"'shape':\s*\([^)]*\)");
}
