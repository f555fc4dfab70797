using HwGen.Cli;
using HwGen.Core;
using HwGen.Core.Ir;
using HwGen.Rtl.Engines.SparseAttention;
using HwGen.Tests.Support;

namespace HwGen.Tests.Engines;

/// <summary>
/// The sparse attention engine assembled (hwgen_sparse_engine: SATT instructions on the score unit, the NN-LUT softmax unit
/// over each row's score buffer and the weighted-sum unit): hwgen compile with sparseAttention gives a design that is
/// bit-exact against the hardware model in the estimated cycles, for a Λ mask, a per-head CSR mask and ViTCoD's split.
/// </summary>
public sealed class SparseEngineRtlTests
{
    static readonly HwConfig Small = new() { ArrayRows = 4, ArrayCols = 8, PortBytes = 4, ScratchpadBytes = 16384 };

    static Compiled Check(string simulator, int tokens, int d, int heads, string masks, AttentionModels.MaskKind mask = AttentionModels.MaskKind.None, int scratchpad = 16384)
    {
        using var dir = new TempDir();
        var path = AttentionModels.MultiHead(41, 1, tokens, d, heads, mask: mask).Save(dir.File("m.onnx"));
        var c = Flow.Compile(path, Small with { SparseAttention = masks, ScratchpadBytes = scratchpad });
        Assert.Contains(c.Design.Program, i => i is Satt);
        Flow.WriteDesignDirectory(c, dir.File("out"), [AttentionModels.Input(42, 1, tokens, d)], path);
        if (simulator == "verilator") RtlCheck.LintClean(dir.File("out"));
        RtlCheck.BitExactInEstimatedCycles(simulator, dir.File("out"), c.Design.EstimatedCycles);
        return c;
    }

    [Theory]
    [InlineData("verilator")]
    [InlineData("icarus")]
    public void A_lambda_mask_is_bit_exact_in_the_estimated_cycles(string simulator) =>
        Check(simulator, 8, 8, 2, "softmax=lambda(s=1, w=2, causal)");

    [Theory]
    [InlineData("verilator")]
    [InlineData("icarus")]
    public void A_csr_mask_per_head_is_bit_exact_in_the_estimated_cycles(string simulator) =>
        Check(simulator, 6, 8, 2, "softmax=model", AttentionModels.MaskKind.PerHead);

    [Fact]
    public void A_vitcod_split_is_bit_exact_in_the_estimated_cycles() =>
        Check("icarus", 6, 8, 2, "softmax=vitcod(theta=0.5)", AttentionModels.MaskKind.PerHead);

    /// <summary>The long sequence of the issue: 256 tokens, head 0 the model's random mask (CSR, about a third of each row, the
    /// diagonal always), head 1 Λ; 512 rows through the three stages. A task keeps the key and value rows of the whole
    /// sequence (a random mask reaches every block): 32 KB of scratchpad.</summary>
    [Fact]
    public void A_256_token_sequence_with_a_csr_and_a_lambda_head_is_bit_exact_in_verilator_in_the_estimated_cycles()
    {
        var c = Check("verilator", 256, 8, 2, "softmax=model/lambda(s=2, w=16)", AttentionModels.MaskKind.PerHead, 32768);
        var masks = c.Graph.Ops.OfType<QAttention>().Single().Masks;
        Assert.StartsWith("csr(", masks[0].ToString());
        Assert.Equal("lambda(s=2, w=16)", masks[1].ToString());
    }

    [Fact]
    public void A_head_across_two_tiles_fails_the_compile_with_one_line()
    {
        using var dir = new TempDir();
        var path = AttentionModels.MultiHead(43, 1, 4, 32, 2).Save(dir.File("m.onnx"));
        File.WriteAllText(dir.File("hw.json"), """{ "arrayRows": 4, "arrayCols": 8, "sparseAttention": "softmax=causal" }""");
        CleanFailure.Assert(dir, ["compile", path, "--config", dir.File("hw.json")],
            "m.onnx", "hw.qattention 'softmax': a head of dk = 16 or dv = 16 features crosses a tile of arrayCols = 8 features");
    }
}
