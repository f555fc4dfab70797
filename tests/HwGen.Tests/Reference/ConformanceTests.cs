using HwGen.Core;
using HwGen.Onnx;
using HwGen.Reference;

namespace HwGen.Tests.Reference;

/// <summary>Golden model (a) against the ONNX conformance node tests (Debian's libonnx-testdata) for every op HwGen supports.</summary>
public sealed class ConformanceTests
{
    const string Root = "/usr/share/libonnx-testdata/data/node";

    /// <summary>Test-name prefixes of the supported ops.</summary>
    static readonly string[] Prefixes =
    [
        "test_quantizelinear", "test_dequantizelinear", "test_qlinearmatmul", "test_matmulinteger", "test_matmul_", "test_gemm_",
        "test_add", "test_sub", "test_mul", "test_div", "test_relu", "test_clip", "test_reshape_", "test_flatten_", "test_transpose_",
        "test_cast_", "test_constant", "test_identity", "test_constantofshape", "test_qlinearconv", "test_conv_", "test_basic_conv_",
        "test_erf", "test_sigmoid", "test_tanh", "test_sqrt", "test_exp", "test_pow", "test_reduce_mean_", "test_softmax_", "test_layer_normalization_",
        "test_shape", "test_gather_", "test_slice", "test_concat_", "test_split_", "test_unsqueeze", "test_squeeze", "test_expand_",
        "test_equal", "test_where_",
    ];

    /// <summary>Cases of those ops HwGen does not take, each with the reason (16-bit floats, strings, sequences, opset 19 attributes).</summary>
    static readonly Dictionary<string, string> NotSupported = new()
    {
        ["FLOAT16"] = "float16", ["BFLOAT16"] = "bfloat16", ["STRING"] = "strings",
        ["test_constant_pad"] = "Pad op", ["test_identity_sequence"] = "sequences", ["test_identity_opt"] = "optional type",
        ["uint64"] = "uint64", ["test_gather_elements"] = "GatherElements op", ["test_split_zero_size"] = "zero-size tensors",
    };

    static List<string> Names() => Directory.GetDirectories(Root).Select(d => Path.GetFileName(d)).Order()
        .Where(n => Prefixes.Any(p => n.StartsWith(p)) && !NotSupported.Keys.Any(k => n.Contains(k)) && !n.EndsWith("_expanded")).ToList();

    public static TheoryData<string> Cases() => new(Names());

    [Fact]
    public void Every_supported_op_has_conformance_cases()
    {
        var names = Names();
        foreach (var op in new[] { "quantizelinear", "dequantizelinear", "qlinearmatmul", "matmulinteger", "matmul_", "gemm", "add", "relu", "clip", "reshape", "flatten", "transpose" })
            Assert.Contains(names, n => n.StartsWith("test_" + op));
        Assert.True(names.Count > 80, $"only {names.Count} cases");
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Matches_the_conformance_outputs(string test)
    {
        var dir = Path.Combine(Root, test);
        var model = OnnxLoader.Load(Path.Combine(dir, "model.onnx"));
        foreach (var set in Directory.GetDirectories(dir, "test_data_set_*"))
        {
            var inputs = new Dictionary<string, Tensor>();
            var runtime = model.RuntimeInputs.ToList();
            for (int i = 0; i < runtime.Count; i++)
            {
                var f = Path.Combine(set, $"input_{i}.pb");
                if (File.Exists(f)) inputs[runtime[i].Name] = OnnxLoader.LoadTensor(f);
            }
            var got = OnnxEvaluator.Run(model, inputs);
            for (int i = 0; i < model.Outputs.Count; i++)
            {
                var want = OnnxLoader.LoadTensor(Path.Combine(set, $"output_{i}.pb"));
                var g = got[model.Outputs[i].Name];
                Assert.Equal(want.Shape, g.Shape);
                Assert.Equal(want.Type, g.Type);
                for (int e = 0; e < want.Size; e++)
                {
                    double w = want.Data[e], v = g.Data[e];
                    if (want.Type.IsInteger()) Assert.True(w == v, $"{test} output {i}[{e}]: expected {w}, got {v}");
                    else Assert.True(Math.Abs(w - v) <= 1e-6 + 1e-4 * Math.Abs(w) || (double.IsNaN(w) && double.IsNaN(v)),
                        $"{test} output {i}[{e}]: expected {w}, got {v}");
                }
            }
        }
    }
}
