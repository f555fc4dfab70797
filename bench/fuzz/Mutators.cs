using System.Text;
using Google.Protobuf;
using HwGen.Onnx;
using HwGen.Onnx.Proto;
using HwGen.Tests.Fuzz;
using Fuzz = HwGen.Tests.Fuzz.Fuzz;
using AT = HwGen.Onnx.Proto.AttributeProto.Types.AttributeType;
using DT = HwGen.Onnx.Proto.TensorProto.Types.DataType;
using Mutation = HwGen.Tests.Fuzz.Fuzz.Mutation;
using Target = HwGen.Tests.Fuzz.Fuzz.Target;

namespace HwGen.FuzzDriver;

/// <summary>
/// The driver's mutations beyond the tests' (<see cref="Fuzz.All"/>, <see cref="Fuzz.MutateNpy"/>, <see cref="Fuzz.MutateConfig"/>):
/// structural edits of ONNX the tests do not make (external data, raw data lengths, cycles, extreme dims and attributes, attribute
/// kinds, names, typed data fields, value infos, IR versions, quantization axes, zero point types), more .npy and config damage,
/// and textual IR. All seeded: a (mutation, seed) pair always gives the same input.
/// </summary>
public static class Mutators
{
    static T Pick<T>(IReadOnlyList<T> xs, Random r) => xs[r.Next(xs.Count)];

    static List<TensorProto> Tensors(ModelProto m)
    {
        var ts = m.Graph.Initializer.ToList();
        ts.AddRange(m.Graph.Node.Where(n => n.OpType == "Constant").SelectMany(n => n.Attribute).Where(a => a.T is not null).Select(a => a.T));
        return ts;
    }

    static long Elements(TensorProto t) => t.Dims.Aggregate(1L, (a, d) => a * d);

    static int ElementBytes(int dt) => (DT)dt switch
    {
        DT.Int8 or DT.Uint8 or DT.Bool => 1,
        DT.Int16 or DT.Uint16 or DT.Float16 or DT.Bfloat16 => 2,
        DT.Float or DT.Int32 or DT.Uint32 => 4,
        DT.Double or DT.Int64 or DT.Uint64 => 8,
        _ => 1,
    };

    static readonly long[] HugeInts = [0, -1, -2, 2, 7, 65, 255, 256, int.MaxValue, (long)int.MaxValue + 1, int.MinValue, 1L << 40, long.MaxValue, long.MinValue];

    /// <summary>The file the external-data mutation may point at: <see cref="ExternalFileBytes"/> bytes written beside the model
    /// in every structural case, and a directory of that name's sibling.</summary>
    public const string ExternalFile = "w.bin", ExternalDir = "sub";
    public const int ExternalFileBytes = 256;

    public static readonly Mutation[] Structure =
    [
        new("external-data", (m, r) =>
        {
            var ts = Tensors(m);
            if (ts.Count == 0) return null;
            var t = Pick(ts, r);
            int needed = (int)Math.Min(int.MaxValue, Elements(t) * ElementBytes(t.DataType));
            t.DataLocation = TensorProto.Types.DataLocation.External;
            t.ExternalData.Clear();
            if (r.Next(3) > 0) t.RawData = ByteString.Empty;
            string location = Pick(new[] { ExternalFile, ExternalFile, "../" + ExternalFile, "/etc/hostname", "missing.bin", "", ExternalDir,
                ".", ExternalDir + "/../" + ExternalFile, new string('x', 300), "w\0.bin", "w.bin\n", "./" + ExternalFile, "//" + ExternalFile }, r);
            if (r.Next(10) > 0) t.ExternalData.Add(new StringStringEntryProto { Key = "location", Value = location });
            string[] numbers = ["0", "1", "-1", "16", "255", "256", "4096", "abc", "", "1e3", "99999999999999999999", "2147483648", "-2147483649", needed.ToString()];
            if (r.Next(2) == 0) t.ExternalData.Add(new StringStringEntryProto { Key = "offset", Value = Pick(numbers, r) });
            if (r.Next(2) == 0) t.ExternalData.Add(new StringStringEntryProto { Key = "length", Value = Pick(numbers, r) });
            if (r.Next(6) == 0) t.ExternalData.Add(new StringStringEntryProto { Key = Pick(new[] { "location", "checksum", "offset", "", "hwgen" }, r), Value = Pick(numbers, r) });
            return Target.Anywhere with { MayPass = true };
        }),
        new("raw-data-length", (m, r) =>
        {
            var ts = Tensors(m).Where(t => !t.RawData.IsEmpty).ToList();
            if (ts.Count == 0) return null;
            var t = Pick(ts, r);
            var raw = t.RawData.ToByteArray();
            int w = ElementBytes(t.DataType);
            byte[] changed = r.Next(5) switch
            {
                0 => raw[..^1],
                1 => [.. raw, 7],
                2 => raw[..(raw.Length / 2)],
                3 => [.. raw, .. new byte[w]],
                _ => [],
            };
            t.RawData = ByteString.CopyFrom(changed);
            return Target.Anywhere with { MayPass = true };
        }),
        new("cycle", (m, r) =>
        {
            var g = m.Graph;
            if (g.Node.Count < 2) return null;
            int i = r.Next(g.Node.Count), j = r.Next(i, g.Node.Count);
            var n = g.Node[i];
            if (n.Input.Count == 0 || g.Node[j].Output.Count == 0) return null;
            n.Input[r.Next(n.Input.Count)] = g.Node[j].Output[0];
            return Target.At(n);
        }),
        new("dim-extreme", (m, r) =>
        {
            switch (r.Next(4))
            {
                case 0:
                {
                    // An initializer of a size that cannot be held, its data as it was.
                    var ts = Tensors(m);
                    if (ts.Count == 0) return null;
                    var t = Pick(ts, r);
                    if (t.Dims.Count == 0) t.Dims.Add(1);
                    t.Dims[r.Next(t.Dims.Count)] = Pick(new[] { 0L, 1L << 31, int.MaxValue, (1L << 24) + 1, 1L << 62 }, r);
                    return Target.Anywhere with { MayPass = true };
                }
                case 1:
                {
                    // An empty tensor: dims with a 0 and no data.
                    var ts = Tensors(m);
                    if (ts.Count == 0) return null;
                    var t = Pick(ts, r);
                    if (t.Dims.Count == 0) t.Dims.Add(0); else t.Dims[r.Next(t.Dims.Count)] = 0;
                    t.RawData = ByteString.Empty;
                    t.FloatData.Clear(); t.Int32Data.Clear(); t.Int64Data.Clear(); t.DoubleData.Clear();
                    return Target.Anywhere with { MayPass = true };
                }
                case 2:
                {
                    // A tensor of many unit dims (rank up to 80), same data.
                    var ts = Tensors(m);
                    if (ts.Count == 0) return null;
                    var t = Pick(ts, r);
                    for (int k = r.Next(1, 80); k > 0; k--) t.Dims.Insert(r.Next(t.Dims.Count + 1), 1);
                    return Target.Anywhere with { MayPass = true };
                }
                default:
                {
                    var ti = m.Graph.Input[r.Next(m.Graph.Input.Count)].Type?.TensorType;
                    if (ti?.Shape is null) return null;
                    var dims = ti.Shape.Dim;
                    switch (r.Next(4))
                    {
                        case 0: dims.Clear(); break;
                        case 1: for (int k = r.Next(1, 10); k > 0; k--) dims.Add(new TensorShapeProto.Types.Dimension { DimValue = 1 }); break;
                        case 2: if (dims.Count > 0) dims[r.Next(dims.Count)].DimValue = Pick(new[] { 0L, int.MaxValue, 1L << 31, -1 }, r); break;
                        default: if (dims.Count > 0) dims[r.Next(dims.Count)].DimParam = Pick(new[] { "", "N", "batch\n", "-1" }, r); break;
                    }
                    return Target.Anywhere with { MayPass = true };
                }
            }
        }),
        new("attribute-extreme", (m, r) =>
        {
            var attrs = m.Graph.Node.SelectMany(n => n.Attribute).Where(a => a.Type != AT.Tensor).ToList();
            if (attrs.Count == 0) return null;
            var a = Pick(attrs, r);
            switch (a.Type)
            {
                case AT.Int: a.I = Pick(HugeInts, r); break;
                case AT.Float: a.F = Pick(new[] { float.NaN, float.PositiveInfinity, float.NegativeInfinity, -0f, float.Epsilon, float.MaxValue, -1e9f }, r); break;
                case AT.Ints:
                    switch (r.Next(4))
                    {
                        case 0: a.Ints.Clear(); break;
                        case 1: a.Ints.AddRange(Enumerable.Repeat(1L, r.Next(2) == 0 ? 9 : 100_000)); break;
                        case 2: if (a.Ints.Count > 0) a.Ints[r.Next(a.Ints.Count)] = Pick(HugeInts, r); break;
                        default: for (int i = 0; i < a.Ints.Count; i++) a.Ints[i] = -a.Ints[i] - 1; break;
                    }
                    break;
                case AT.Floats: a.Floats.Clear(); if (r.Next(2) == 0) a.Floats.Add(float.NaN); break;
                case AT.String:
                    a.S = ByteString.CopyFrom(Pick(new[] { "", "\n", new string('z', 100_000), "\u00ff\u0100", "NOTSET" }, r), Encoding.UTF8);
                    if (r.Next(4) == 0) a.S = ByteString.CopyFrom([0xff, 0xfe, 0x80]);
                    break;
                default: a.Type = AT.Int; a.I = Pick(HugeInts, r); break;
            }
            return Target.Anywhere with { MayPass = true };
        }),
        new("attribute-kind", (m, r) =>
        {
            var nodes = m.Graph.Node.Where(n => n.Attribute.Count > 0).ToList();
            if (nodes.Count == 0) return null;
            var n = Pick(nodes, r);
            var a = Pick(n.Attribute.ToList(), r);
            var kind = Pick(new[] { AT.Int, AT.Ints, AT.Float, AT.Floats, AT.String, AT.Strings, AT.Tensor, AT.Graph, AT.SparseTensor, AT.Graphs, AT.TypeProto }, r);
            var b = new AttributeProto { Name = a.Name, Type = kind };
            switch (kind)
            {
                case AT.Int: b.I = 1; break;
                case AT.Ints: b.Ints.AddRange(r.Next(2) == 0 ? [] : [1, 2]); break;
                case AT.Float: b.F = 1; break;
                case AT.Floats: b.Floats.Add(1); break;
                case AT.String: b.S = ByteString.CopyFromUtf8("1"); break;
                case AT.Strings: b.Strings.Add(ByteString.CopyFromUtf8("1")); break;
                case AT.Tensor: if (r.Next(3) > 0) b.T = new TensorProto { DataType = (int)DT.Int64, Int64Data = { 1 } }; break;
                case AT.Graph: if (r.Next(2) > 0) b.G = new GraphProto { Name = "g" }; break;
                case AT.SparseTensor: b.SparseTensor = new SparseTensorProto { Values = new TensorProto { DataType = (int)DT.Float, Dims = { 1 }, FloatData = { 1 } }, Dims = { 2 } }; break;
                case AT.Graphs: b.Graphs.Add(new GraphProto()); break;
                default: b.Tp = new TypeProto(); break;
            }
            if (r.Next(4) == 0) b.Type = AT.Undefined;   // a payload without a type (IR version 1's attributes)
            n.Attribute[n.Attribute.IndexOf(a)] = b;
            return Target.Anywhere with { MayPass = true };
        }),
        new("names", (m, r) =>
        {
            var g = m.Graph;
            string name = Pick(new[] { "", " ", "a\nb", "a\rb", new string('n', 5000), "x/../../y", "\u00e9\u4e2d", "%v", "\"q\"", "a,b" }, r);
            var values = g.Node.SelectMany(n => n.Input.Concat(n.Output)).Where(v => v.Length > 0).Distinct().ToList();
            switch (r.Next(5))
            {
                case 0: // rename one value everywhere
                {
                    var v = Pick(values, r);
                    foreach (var n in g.Node)
                    {
                        for (int i = 0; i < n.Input.Count; i++) if (n.Input[i] == v) n.Input[i] = name;
                        for (int i = 0; i < n.Output.Count; i++) if (n.Output[i] == v) n.Output[i] = name;
                    }
                    foreach (var t in g.Initializer.Where(t => t.Name == v)) t.Name = name;
                    foreach (var vi in g.Input.Concat(g.Output).Concat(g.ValueInfo).Where(x => x.Name == v)) vi.Name = name;
                    break;
                }
                case 1: // one use renamed (dangling, or another value's name)
                {
                    var n = Pick(g.Node.Where(n => n.Input.Count > 0).ToList(), r);
                    n.Input[r.Next(n.Input.Count)] = r.Next(2) == 0 ? name : Pick(values, r);
                    break;
                }
                case 2: // two nodes make one value
                {
                    var n = Pick(g.Node.ToList(), r);
                    if (n.Output.Count == 0) return null;
                    n.Output[0] = Pick(values, r);
                    break;
                }
                case 3: // node names: empty, duplicated, odd
                    foreach (var n in g.Node) if (r.Next(2) == 0) n.Name = name;
                    break;
                default: // an initializer named as the graph input, or twice
                {
                    if (g.Initializer.Count == 0) return null;
                    var t = Pick(g.Initializer.ToList(), r).Clone();
                    if (r.Next(2) == 0) t.Name = g.Input[0].Name;
                    g.Initializer.Add(t);
                    break;
                }
            }
            return Target.Anywhere with { MayPass = true };
        }),
        new("typed-data", (m, r) =>
        {
            var ts = Tensors(m).Where(t => !t.RawData.IsEmpty).ToList();
            if (ts.Count == 0) return null;
            var t = Pick(ts, r);
            int count = (int)Math.Min(1 << 20, Elements(t)) + r.Next(-1, 2);
            bool keepRaw = r.Next(3) == 0;
            if (!keepRaw) t.RawData = ByteString.Empty;
            count = Math.Max(0, count);
            switch (r.Next(7))
            {
                case 0: t.FloatData.AddRange(Enumerable.Repeat(0.5f, count)); break;
                case 1: t.Int32Data.AddRange(Enumerable.Repeat(r.Next(2) == 0 ? 1 : int.MinValue, count)); break;
                case 2: t.Int64Data.AddRange(Enumerable.Repeat(r.Next(2) == 0 ? 1L : long.MaxValue, count)); break;
                case 3: t.DoubleData.AddRange(Enumerable.Repeat(r.Next(2) == 0 ? 0.25 : double.NaN, count)); break;
                case 4: t.Uint64Data.AddRange(Enumerable.Repeat(ulong.MaxValue, count)); break;
                case 5: t.StringData.AddRange(Enumerable.Repeat(ByteString.CopyFromUtf8("s"), count)); break;
                default: t.Segment = new TensorProto.Types.Segment { Begin = -1, End = 1L << 40 }; break;
            }
            return Target.Anywhere with { MayPass = true };
        }),
        new("value-info", (m, r) =>
        {
            var g = m.Graph;
            var vi = Pick(g.Input.Concat(g.Output).Concat(g.ValueInfo).ToList(), r);
            switch (r.Next(5))
            {
                case 0: vi.Type = null; break;
                case 1: vi.Type = new TypeProto { SequenceType = new TypeProto.Types.Sequence { ElemType = vi.Type?.Clone() } }; break;
                case 2: if (vi.Type?.TensorType is { } tt) tt.ElemType = Pick(new[] { 0, 2, 3, 6, 8, 9, 10, 11, 16, 99, -1 }, r); break;
                case 3: if (vi.Type?.TensorType is { } t2) t2.Shape = null; break;
                default: vi.Type = new TypeProto { TensorType = new TypeProto.Types.Tensor() }; break;
            }
            return Target.Anywhere with { MayPass = true };
        }),
        new("ir-version", (m, r) =>
        {
            m.IrVersion = Pick(new[] { 0L, -1, 1, 3, 11, 12, 1000, long.MaxValue }, r);
            if (r.Next(3) == 0) m.OpsetImport.Add(new OperatorSetIdProto { Domain = Pick(new[] { "", "ai.onnx", "qonnx.custom_op.general", "com.microsoft" }, r), Version = Pick(new[] { 0L, -1, 13, 21, 1L << 40 }, r) });
            return Target.Anywhere with { MayPass = true };
        }),
        new("quant-axis", (m, r) =>
        {
            var qs = m.Graph.Node.Where(n => n.OpType is "QuantizeLinear" or "DequantizeLinear" or "Quant" or "IntQuant" or "QLinearMatMul" or "QGemm" or "QLinearConv").ToList();
            if (qs.Count == 0) return null;
            var n = Pick(qs, r);
            string name = Pick(new[] { "axis", "axis", "block_size", "saturate", "output_dtype", "narrow", "signed", "rounding_mode" }, r);
            foreach (var old in n.Attribute.Where(a => a.Name == name).ToList()) n.Attribute.Remove(old);
            n.Attribute.Add(name == "rounding_mode"
                ? new AttributeProto { Name = name, Type = AT.String, S = ByteString.CopyFromUtf8(Pick(new[] { "ROUND", "FLOOR", "", "UP", "HALF_EVEN" }, r)) }
                : new AttributeProto { Name = name, Type = AT.Int, I = Pick(new[] { -9L, -2, -1, 0, 1, 2, 3, 4, 17, int.MaxValue, long.MinValue }, r) });
            return Target.Anywhere with { MayPass = true };
        }),
        new("zero-point-type", (m, r) =>
        {
            var c = m.Graph.Initializer.ToDictionary(t => t.Name);
            var zs = m.Graph.Node.Where(n => n.OpType is "QuantizeLinear" or "DequantizeLinear" && n.Input.Count > 2 && c.ContainsKey(n.Input[2]))
                .Select(n => c[n.Input[2]]).Distinct().ToList();
            if (zs.Count == 0) return null;
            var t = Pick(zs, r);
            var dt = Pick(new[] { DT.Int16, DT.Uint16, DT.Int32, DT.Float, (DT)22, (DT)21, (DT)17, DT.Bool, DT.Int64, DT.Double }, r);
            int n = (int)Math.Max(0, Elements(t));
            t.DataType = (int)dt;
            t.RawData = ByteString.CopyFrom(new byte[(int)dt is 21 or 22 ? (n + 1) / 2 : n * ElementBytes((int)dt)]);
            if (r.Next(3) == 0) { t.Dims.Clear(); t.Dims.Add(r.Next(2) + 2); t.RawData = ByteString.CopyFrom(new byte[(r.Next(2) + 2) * ElementBytes((int)dt)]); }
            return Target.Anywhere with { MayPass = true };
        }),
        new("scale-shape", (m, r) =>
        {
            var c = m.Graph.Initializer.ToDictionary(t => t.Name);
            var ss = m.Graph.Node.Where(n => n.OpType is "QuantizeLinear" or "DequantizeLinear" or "Quant" && n.Input.Count > 1 && c.ContainsKey(n.Input[1]))
                .Select(n => c[n.Input[1]]).Where(t => t.DataType == (int)DT.Float).Distinct().ToList();
            if (ss.Count == 0) return null;
            var t = Pick(ss, r);
            int count = Pick(new[] { 1, 2, 3, 7, 10, 48, 65 }, r);
            t.Dims.Clear();
            if (r.Next(3) > 0) t.Dims.Add(count); else { t.Dims.Add(1); t.Dims.Add(count); }
            t.FloatData.Clear();
            t.RawData = ByteString.CopyFrom(Enumerable.Range(0, count).SelectMany(i => BitConverter.GetBytes(0.01f * (i + 1))).ToArray());
            return Target.Anywhere with { MayPass = true };
        }),
        new("constant-form", (m, r) =>
        {
            var cs = m.Graph.Node.Where(n => n.OpType == "Constant").ToList();
            if (cs.Count == 0) return null;
            var n = Pick(cs, r);
            var a = Pick(new[]
            {
                new AttributeProto { Name = "value_float", Type = AT.Float, F = 0.5f },
                new AttributeProto { Name = "value_floats", Type = AT.Floats, Floats = { 0.5f, float.NaN } },
                new AttributeProto { Name = "value_int", Type = AT.Int, I = long.MaxValue },
                new AttributeProto { Name = "value_ints", Type = AT.Ints },
                new AttributeProto { Name = "value_string", Type = AT.String, S = ByteString.CopyFromUtf8("s") },
                new AttributeProto { Name = "value_strings", Type = AT.Strings },
                new AttributeProto { Name = "sparse_value", Type = AT.SparseTensor, SparseTensor = new SparseTensorProto
                {
                    Dims = { 4, 4 }, Values = new TensorProto { DataType = (int)DT.Float, Dims = { 2 }, FloatData = { 1, 2 } },
                    Indices = new TensorProto { DataType = (int)DT.Int64, Dims = { 2 }, Int64Data = { r.Next(2) == 0 ? 3 : 99, -1 } },
                } },
                new AttributeProto { Name = "sparse_value", Type = AT.SparseTensor, SparseTensor = new SparseTensorProto() },
            }, r);
            if (r.Next(2) == 0) n.Attribute.Clear();
            n.Attribute.Add(a);
            return Target.Anywhere with { MayPass = true };
        }),
        new("sparse-initializer", (m, r) =>
        {
            var g = m.Graph;
            if (g.Initializer.Count == 0) return null;
            var t = Pick(g.Initializer.ToList(), r);
            if (r.Next(2) == 0) g.Initializer.Remove(t);
            long n = Math.Max(1, Elements(t));
            g.SparseInitializer.Add(new SparseTensorProto
            {
                Dims = { t.Dims },
                Values = new TensorProto { Name = t.Name, DataType = t.DataType, Dims = { 1 }, RawData = ByteString.CopyFrom(new byte[ElementBytes(t.DataType)]) },
                Indices = new TensorProto { DataType = (int)DT.Int64, Dims = { 1 }, Int64Data = { Pick(new[] { 0L, n - 1, n, -1, long.MaxValue }, r) } },
            });
            return Target.Anywhere with { MayPass = true };
        }),
        new("node-outputs", (m, r) =>
        {
            var n = Pick(m.Graph.Node.ToList(), r);
            switch (r.Next(3))
            {
                case 0: n.Output.Clear(); break;
                case 1: n.Output.Add(""); n.Output.Add(n.Output[0] + "_extra"); break;
                default: n.Output.Insert(0, ""); break;
            }
            return Target.Anywhere with { MayPass = true };
        }),
        new("functions", (m, r) =>
        {
            var n = Pick(m.Graph.Node.ToList(), r);
            var f = new FunctionProto { Name = n.OpType, Domain = "local.fn", Input = { "a" }, Output = { "b" } };
            if (r.Next(2) == 0) f.Node.Add(new NodeProto { OpType = "Identity", Input = { "a" }, Output = { "b" } });
            m.Functions.Add(f);
            if (r.Next(2) == 0) n.Domain = "local.fn";
            m.OpsetImport.Add(new OperatorSetIdProto { Domain = "local.fn", Version = 1 });
            return Target.Anywhere with { MayPass = true };
        }),
        new("subgraph", (m, r) =>
        {
            var n = Pick(m.Graph.Node.ToList(), r);
            var body = m.Graph.Clone();
            body.Initializer.Clear();
            n.Attribute.Add(new AttributeProto { Name = Pick(new[] { "then_branch", "body", "else_branch" }, r), Type = AT.Graph, G = body });
            if (r.Next(2) == 0) n.OpType = Pick(new[] { "If", "Loop", "Scan" }, r);
            return Target.Anywhere with { MayPass = true };
        }),
    ];

    // ---- .npy ----

    /// <summary>.npy damage the tests' <see cref="Fuzz.MutateNpy"/> does not make: magic, versions 2 and 3 with odd header lengths,
    /// headers that are no dict or miss keys, other descr spellings, shapes of another rank, extra or missing data.</summary>
    public static byte[] MutateNpy(int[] shape, Random r)
    {
        int n = shape.Aggregate(1, (a, d) => a * d);
        byte[] Data(int count) => Enumerable.Range(0, count).SelectMany(i => BitConverter.GetBytes(i % 5 / 4f)).ToArray();
        string Dict(string descr, string fortran, string shapeText) => $"{{'descr': {descr}, 'fortran_order': {fortran}, 'shape': {shapeText}, }}";
        string shapeText = "(" + string.Join(", ", shape) + (shape.Length == 1 ? ",)" : ")");
        byte[] File(byte major, string header, byte[] data, bool pad = true, long? lengthField = null)
        {
            int prefix = major == 1 ? 10 : 12;
            if (pad) { header += new string(' ', (64 - (prefix + header.Length + 1) % 64) % 64) + "\n"; }
            var hb = Encoding.Latin1.GetBytes(header);
            var head = new List<byte> { 0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', major, 0 };
            long len = lengthField ?? hb.Length;
            head.AddRange(major == 1 ? BitConverter.GetBytes((ushort)len) : BitConverter.GetBytes((uint)len));
            return [.. head, .. hb, .. data];
        }
        string d = Dict("'<f4'", "False", shapeText);
        return r.Next(16) switch
        {
            0 => [0x93, .. "NUMPX"u8, 1, 0, .. File(1, d, Data(n))[8..]],
            1 => File(2, d, Data(n)),
            2 => File(3, d, Data(n)),
            3 => File(2, d, Data(n), lengthField: uint.MaxValue),
            4 => File(1, "[1, 2, 3]", Data(n)),
            5 => File(1, "{'descr': '<f4', 'shape': " + shapeText + "}", Data(n)),
            6 => File(1, Dict(Pick(new[] { "'f4'", "'=f4'", "'float32'", "'<f2'", "'<c8'", "'<i4'", "'|b1'", "'<M8'", "'V4'", "'<f4 '" }, r), "False", shapeText), Data(n)),
            7 => File(1, Dict("'<f4'", Pick(new[] { "1", "0", "'False'", "None", "false" }, r), shapeText), Data(n)),
            8 => File(1, Dict("'<f4'", "False", "(" + string.Join(", ", shape.Reverse()) + ",)"), Data(n)),
            9 => File(1, d, Data(n + r.Next(1, 100))),
            10 => File(1, d, Data(n)[..^r.Next(1, 4)]),
            11 => File(1, d, Data(n), pad: false),
            12 => File(1, Dict("'<f4'", "False", "(" + Pick(new[] { "1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1", "0,", "1,", "2147483647, 2", "4096, 4096", "-0, 64", "+1, 64", "1 , 64", "0x1, 64", "1.0, 64" }, r) + ")"), Data(n)),
            13 => File(1, "{'descr': '<f4', 'fortran_order': False, 'shape': " + shapeText + ", 'shape': (9,), }", Data(n)),
            14 => File(1, d + new string(' ', 70000), Data(n), pad: false),
            _ => Pick(new[] { Array.Empty<byte>(), [0x93], "\u0093NUMPY"u8.ToArray(), File(1, "", [], pad: false), File(1, "{", []), File(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 64), '\u00ff': 1}", Data(n)) }, r),
        };
    }

    // ---- configs ----

    /// <summary>Configs the tests' <see cref="Fuzz.MutateConfig"/> does not make: the string fields (layer lists, BitMoD formats,
    /// sparse attention masks) with grammar-shaped garbage, JSON oddities (duplicate keys, comments, nesting, a BOM, escapes).</summary>
    public static string MutateConfig(Random r, IReadOnlyList<string> layers)
    {
        string layer = layers.Count > 0 ? Pick(layers, r) : "fc1";
        string Json(string field, string value) => $"{{\"scheduler\": \"greedy\", \"{field}\": {System.Text.Json.JsonSerializer.Serialize(value)}}}";
        string[] masks = ["model", "dense", "causal", "lambda(s=2, w=4)", "lambda(s=0, w=0)", "lambda(s=-1, w=99999999999)", "lambda(s=2)", "lambda(w=4, causal)",
            "lambda(s=2, w=4, causal, causal)", "csr(ptr=[0, 1], col=[0])", "csr(ptr=[], col=[])", "csr(ptr=[0, 5], col=[0])", "csr(ptr=[1, 0], col=[-1])",
            "csr(ptr=[0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17], col=[0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16])", "vitcod(theta=0.5)", "vitcod(theta=nan)",
            "vitcod(theta=-1)", "vitcod(theta=1e400)", "vitcod()", "csr(ptr=[0, 2147483647], col=[0])", "lambda(", "(", ")", "", "causal/causal/causal/causal/causal",
            "lambda(s=1e3, w=2.5)", "csr(ptr=[0,1], col=[0], x=1)", "model/dense", "vitcod(theta=0.5)/causal"];
        switch (r.Next(12))
        {
            case 0: case 1: case 2:
            {
                int k = r.Next(1, 4);
                var entries = Enumerable.Range(0, k).Select(_ => (r.Next(5) == 0 ? Pick(new[] { "*", "", " ", "nosuch", "a=b" }, r) : layer) + "=" + Pick(masks, r));
                return Json("sparseAttention", string.Join(Pick(new[] { ";", ";", ",", ";;" }, r), entries));
            }
            case 3: case 4:
            {
                string[] formats = ["", "=mod3", "=mod4/64", "=int4", "=int3/8", "=mod", "=fp4", "=mod3/0", "=mod3/-8", "=int99", "=mod3/99999999999", "=/", "=int4/3", "=mod2", "=int1", "=int16/4", "=mod3/1"];
                var entries = Enumerable.Range(0, r.Next(1, 4)).Select(_ => (r.Next(5) == 0 ? Pick(new[] { "*", "nosuch", "a b" }, r) : layer) + Pick(formats, r));
                return Json("bitmodLayers", string.Join(",", entries));
            }
            case 5:
                return Json("tlmmLayers", string.Join(",", Enumerable.Range(0, r.Next(1, 4)).Select(_ => r.Next(4) == 0 ? Pick(new[] { "*", "nosuch", " " }, r) : layer)));
            case 6:
                return $"{{\"scheduler\": \"greedy\", \"bitmodLayers\": \"{layer}\", \"bitmodBits\": {Pick(new[] { 1, 2, 3, 4, 5, 8, 16 }, r)}, \"bitmodGroup\": {Pick(new[] { 1, 3, 4, 8, 64, 1024, 65536 }, r)}, \"bitmodScaleBits\": {Pick(new[] { 1, 2, 8, 16 }, r)}, \"bitmodFormat\": \"{Pick(new[] { "mod", "int", "fp", " mod" }, r)}\"}}";
            case 7:
                return $"{{\"scheduler\": \"greedy\", \"tlmmGroup\": {Pick(new[] { 0, 1, 2, 3, 4, 16 }, r)}, \"tlmmLayers\": \"{layer}\", \"arrayRows\": {Pick(new[] { 1, 2, 3, 4, 8 }, r)}, \"arrayCols\": {Pick(new[] { 3, 6, 8, 16 }, r)}}}";
            case 8:
                return Pick(new[]
                {
                    "{\"arrayRows\": 4, \"arrayRows\": 8, \"scheduler\": \"greedy\"}",
                    "{\"scheduler\": \"greedy\" // comment\n}",
                    "{\"scheduler\": \"greedy\",}",
                    "\uFEFF{\"scheduler\": \"greedy\"}",
                    "{\"sch\\u0065duler\": \"greedy\"}",
                    "{\"scheduler\": \"gr\\u0000eedy\"}",
                    "{\"scheduler\": \"greedy\", \"arrayRows\": -0}",
                    "{\"scheduler\": \"greedy\", \"arrayRows\": 4.0}",
                    "{\"scheduler\": \"greedy\", \"clockMHz\": 1e-320}",
                    "{\"scheduler\": \"greedy\", \"arrayRows\": 4e0}",
                    "{\"scheduler\": \"greedy\", \"ilpTimeLimitSeconds\": 1e-300}",
                    "{\"scheduler\": \"greedy\", \"arrayRows\": \"8\"}",
                    "{\"scheduler\": \"\\ud800\"}",
                    "{\"Scheduler\": \"greedy\"}",
                    "{\"scheduler\": \"greedy\"} {}",
                    "{\"scheduler\": \"greedy\"}\u0000",
                    "{\"scheduler\": NaN}",
                }, r);
            case 9:
                return new string('[', Pick(new[] { 63, 64, 65, 1000, 100_000 }, r)) + "1" + new string(']', 3);
            case 10:
                return "{\"scheduler\": \"greedy\", \"tlmmLayers\": \"" + new string('a', Pick(new[] { 1000, 1_000_000 }, r)) + "\"}";
            default:
                return Encoding.Latin1.GetString(Enumerable.Range(0, r.Next(1, 64)).Select(_ => (byte)r.Next(256)).ToArray());
        }
    }

    // ---- textual IR ----

    static readonly System.Text.RegularExpressions.Regex ConstRe = new(@"const<[^>]*>");
    static readonly System.Text.RegularExpressions.Regex FieldRe = new(@"(file|offset|count|type|sha256|head)=(""[^""]*""|\[[^\]]*\]|[^,>]+)");

    /// <summary>One field of one <c>const&lt;...&gt;</c> reference changed (another file, offset, count, type, hash or head),
    /// removed or given twice, or the reference moved to another attribute.</summary>
    public static string MutateConstRef(string text, Random r)
    {
        var refs = ConstRe.Matches(text);
        if (refs.Count == 0) return MutateIr(text, r);
        var m = refs[r.Next(refs.Count)];
        var fields = FieldRe.Matches(m.Value);
        if (fields.Count == 0) return text;
        var f = fields[r.Next(fields.Count)];
        string key = f.Groups[1].Value;
        string value = key switch
        {
            "file" => Pick(new[] { "\"\"", "\".\"", "\"..\"", "\"in.hwir\"", "\"missing.consts\"", "\"a/b\"", "\"/etc/hostname\"", "\"x\\u0000y\"", "\"sub\"", "model" }, r),
            "offset" or "count" => Pick(EdgeNumbers.Concat(["4", "8", "64", "3072", "16777216", "16777217", "2147483591", "9223372036854775000"]).ToArray(), r),
            "type" => Pick(new[] { "t2", "i8", "i16", "i32", "f64", "f32", "u8", "\"i8\"", "x" }, r),
            "sha256" => Pick(new[] { "\"\"", "\"0000000000000000\"", "0", "[]" }, r),
            _ => Pick(new[] { "[]", "[0]", "[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]", "[nan]", "\"s\"", "[[0]]" }, r),
        };
        string changed = r.Next(5) switch
        {
            0 => m.Value.Remove(f.Index, f.Length),
            1 => m.Value.Insert(f.Index, f.Value + ", "),
            2 => m.Value.Insert(m.Value.Length - 1, ", extra=1"),
            _ => m.Value[..f.Index] + key + "=" + value + m.Value[(f.Index + f.Length)..],
        };
        return text[..m.Index] + changed + text[(m.Index + m.Length)..];
    }

    static readonly System.Text.RegularExpressions.Regex NumberRe = new(@"(?<![A-Za-z_%@0-9.])-?(\d+(\.\d*)?([eE][+-]?\d+)?|inf|nan)(?![A-Za-z_0-9])");
    static readonly System.Text.RegularExpressions.Regex ValueRe = new(@"%[A-Za-z0-9_]+");
    static readonly System.Text.RegularExpressions.Regex IdentRe = new(@"\b(hw\.[a-z_]+|[a-z]+\d+|[a-z_]+)\b");
    static readonly System.Text.RegularExpressions.Regex AttrRe = new(@"(?<=[{,]\s*)[a-z_]+=(""[^""]*""|\[[^\]]*\]|[^,}]+)\s*,?\s*");
    static readonly System.Text.RegularExpressions.Regex ListRe = new(@"\[[^\[\]]*\]");

    static readonly string[] EdgeNumbers = ["0", "-1", "1", "2", "3", "7", "127", "-128", "128", "255", "256", "65", "2147483647", "2147483648", "-2147483649",
        "9223372036854775808", "99999999999999999999999", "1e308", "1e309", "-1e308", "1e-320", "nan", "inf", "-inf", "1.5", "-0", "0.5", "16777217", "65536"];

    /// <summary>One to three textual edits of IR text: a number to an edge value, an identifier (op, type, attribute, format) to another
    /// of the file's, a value use to another value, a line deleted, duplicated or swapped, an attribute or list item removed, a list
    /// emptied or nested, a quantization changed, bytes flipped, deep nesting.</summary>
    public static string MutateIr(string text, Random r)
    {
        for (int edits = r.Next(1, 4); edits > 0; edits--)
        {
            var lines = text.Split('\n').ToList();
            int Line() => r.Next(lines.Count);
            string ReplaceMatch(System.Text.RegularExpressions.Regex re, Func<string, string> with)
            {
                var ms = re.Matches(text);
                if (ms.Count == 0) return text;
                var mt = ms[r.Next(ms.Count)];
                return text[..mt.Index] + with(mt.Value) + text[(mt.Index + mt.Length)..];
            }
            switch (r.Next(14))
            {
                case 0: case 1: case 2: text = ReplaceMatch(NumberRe, _ => Pick(EdgeNumbers, r)); break;
                case 3:
                {
                    var ids = IdentRe.Matches(text).Select(x => x.Value).Distinct().ToList();
                    if (ids.Count > 0) text = ReplaceMatch(IdentRe, _ => Pick(ids, r));
                    break;
                }
                case 4:
                {
                    var vs = ValueRe.Matches(text).Select(x => x.Value).Distinct().ToList();
                    if (vs.Count > 0) text = ReplaceMatch(ValueRe, _ => Pick(vs, r));
                    break;
                }
                case 5: if (lines.Count > 1) { lines.RemoveAt(Line()); text = string.Join('\n', lines); } break;
                case 6: { int i = Line(); lines.Insert(i, lines[i]); text = string.Join('\n', lines); break; }
                case 7: { int i = Line(), j = Line(); (lines[i], lines[j]) = (lines[j], lines[i]); text = string.Join('\n', lines); break; }
                case 8: text = ReplaceMatch(AttrRe, _ => ""); break;
                case 9: text = ReplaceMatch(ListRe, l => Pick(new[] { "[]", "[" + l + "]", l.Length > 2 ? "[" + l[1..^1].Split(',')[0] + "]" : l, l.Replace("]", ", 1]"), "[\"s\"]" }, r)); break;
                case 10:
                {
                    var q = new System.Text.RegularExpressions.Regex(@"q<[^>]*>");
                    text = ReplaceMatch(q, _ => Pick(new[] { "", "q<0, 0>", "q<-1, 0>", "q<nan, 0>", "q<0.1, 300>", "q<axis=0, [0.1], [0]>", "q<axis=5, [0.1, 0.2], [0]>", "q<axis=-1, [], []>", "q<axis=1, [0.1, 0.2], [0, 0]>" }, r));
                    break;
                }
                case 11:
                {
                    var b = Fuzz.MutateBytes(Encoding.UTF8.GetBytes(text), r);
                    text = Encoding.UTF8.GetString(b);
                    break;
                }
                case 12:
                {
                    var types = new System.Text.RegularExpressions.Regex(@"\b(i8|u8|i32|f32|f64|i4|i16|u4)\[[^\]]*\]");
                    text = ReplaceMatch(types, t => Pick(new[] { "i8[]", "i8[0]", "i8[1,0]", "i8[-1,4]", "f32[2147483647,2]", "u8[1,64]", "i32[1,1,1,1,1,1,1,1,1]", "i8[65536,65536]", "bf16[1]", "i8[1.5]" }, r));
                    break;
                }
                default:
                {
                    int at = r.Next(text.Length + 1);
                    string deep = Pick(new[] { new string('[', 200), new string('[', 5000) + new string(']', 5000), "[" + string.Join(",", Enumerable.Repeat("1", 100_000)) + "]", "\"" + new string('s', 100_000) + "\"" }, r);
                    text = text[..at] + deep + text[at..];
                    break;
                }
            }
        }
        return text;
    }
}
