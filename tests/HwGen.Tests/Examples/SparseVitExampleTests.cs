using HwGen.Cli;
using HwGen.Core;
using HwGen.Core.Ir;
using HwGen.Onnx;
using HwGen.Passes;
using HwGen.Sim;
using HwGen.Tests.Support;

namespace HwGen.Tests.Examples;

/// <summary>tiny_vit_digits' fine-tuned sparse variants (make_sparse.py): each attention's mask is an additive constant before its
/// Softmax, and <c>sparseAttention: "*=model"</c> puts both layers on the sparse attention engine with the model's masks.</summary>
public sealed class SparseVitExampleTests
{
    static readonly string Dir = Path.Combine(Repo.Root, "examples", "tiny_vit_digits");

    /// <summary>4x16: a head of 16 features inside one tile, as the sparse engine needs.</summary>
    static readonly HwConfig Sparse = new() { ArrayRows = 4, ArrayCols = 16, Scheduler = "greedy", SparseAttention = "*=model" };

    static Tensor Digits(int n)
    {
        var x = Npy.Read(Path.Combine(Dir, "test_x.npy"));
        int per = x.Shape[1] * x.Shape[2];
        return new Tensor(x.Type, [n, x.Shape[1], x.Shape[2]], x.Data[..(n * per)]);
    }

    /// <summary>The Λ model's masks (2 sinks, window 4, not causal) become Λ; the top-k model's (k = 2 of 16 per row) CSR with 2
    /// non-zeros a row; on a few digits the sparse kernel's outputs equal masked dense attention's (the same model without
    /// <c>sparseAttention</c>: hw.qmatmul and the masked hw.qsoftmax).</summary>
    [Theory]
    [InlineData("model_lambda.onnx")]
    [InlineData("model_sparse90.onnx")]
    public void The_model_masks_are_recognized_and_the_sparse_kernel_equals_masked_dense_attention(string name)
    {
        var model = OnnxLoader.Load(Path.Combine(Dir, name));
        var g = Pipeline.Compile(model, Sparse, null, 1);
        var attention = g.Ops.OfType<QAttention>().ToList();
        Assert.Equal(2, attention.Count);
        Assert.Empty(g.Ops.OfType<QSoftmax>());
        foreach (var a in attention)
            for (int h = 0; h < a.Heads; h++)
            {
                var mask = a.MaskOf(h);
                if (name == "model_lambda.onnx")
                    Assert.Equal(new AttentionMask.Lambda(2, 4, false), mask);
                else
                {
                    Assert.IsType<AttentionMask.Csr>(mask);
                    Assert.Equal(2L * a.M, mask.NonZeros(a.M, a.N));
                }
            }
        var x = Digits(8);
        var sparse = Flow.GoldenOutputs(model, Sparse, x, "test_x.npy");
        var dense = Flow.GoldenOutputs(model, Sparse with { SparseAttention = "" }, x, "test_x.npy");
        Assert.Equal(dense.Shape, sparse.Shape);
        Assert.Equal(dense.Data, sparse.Data);
    }

    /// <summary>One digit of the 87.5 % sparse model through the RTL in Verilator, both layers on the sparse engine (SATT
    /// instructions): bit-exact with the golden model in the estimated cycles.</summary>
    [Fact]
    public void The_sparse_rtl_of_a_digit_is_bit_exact_in_the_estimated_cycles()
    {
        var model = Path.Combine(Dir, "model_sparse90.onnx");
        var c = Flow.Compile(model, Sparse, batch: 1);
        Assert.Contains(c.Design.Program, i => i.Owner is QAttention);
        using var dir = new TempDir();
        Flow.WriteDesignDirectory(c, dir.File("out"), Flow.CheckInputs(c.Graph, [Digits(1)], "test_x.npy"), model);
        RtlCheck.BitExactInEstimatedCycles("verilator", dir.File("out"), c.Design.EstimatedCycles);
    }
}
