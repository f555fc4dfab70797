using HwGen.Core;
using HwGen.Core.Ir;
using HwGen.Onnx;
using HwGen.Passes.Import;

namespace HwGen.Passes;

/// <summary>A compiler pass over HwGen IR. Passes are small and single-purpose; the verifier runs after each.</summary>
public interface IPass
{
    string Name { get; }
    void Run(Graph graph, HwConfig config);
}

/// <summary>The passes in order. The verifier runs after each; <c>dump</c> sees the IR after each.</summary>
public static class Pipeline
{
    public static IReadOnlyList<IPass> Passes { get; } =
    [
        new InferShapes(),        // first: later passes read result types
        new FuseClampIntoGemm(),  // before SelectEngines: leaves no QClamp behind a single-use QGemm
        new FuseRequantIntoGemm(),// after FuseClampIntoGemm, before LegalizeRequant: multiplies real multipliers
        new LegalizeRequant(),    // integer multiplier and shift for every QGemm and QRequant
        new SparsifyAttention(),  // after LegalizeRequant (copies the products' multipliers), before SelectEngines
        new SelectEngines(),      // after the fusions: every remaining op needs an engine
        new TileToEngine(),       // after SelectEngines: tiles only ops placed on the dense engine
    ];

    public static IPass? Find(string name) => Passes.FirstOrDefault(p => string.Equals(p.Name, name, StringComparison.OrdinalIgnoreCase));

    /// <summary>Imports an ONNX model and runs every pass.</summary>
    public static Graph Compile(OnnxModel model, HwConfig config, Action<string, Graph>? dump = null, int? batch = null)
    {
        var g = LowerOnnxToIr.Run(model, batch);
        Verifier.Verify(g, "LowerOnnxToIr");
        dump?.Invoke("00_LowerOnnxToIr", g);
        Run(g, config, Passes, dump);
        return g;
    }

    public static void Run(Graph g, HwConfig config, IEnumerable<IPass> passes, Action<string, Graph>? dump = null)
    {
        int i = 1;
        foreach (var p in passes)
        {
            p.Run(g, config);
            Verifier.Verify(g, p.Name);
            dump?.Invoke($"{i++:D2}_{p.Name}", g);
        }
    }
}
