using HwGen.Core;
using HwGen.Reference;

namespace HwGen.Onnx;

public static partial class OnnxEvaluator
{
    /// <summary>Geometry of a 2-D convolution from the node's attributes and the input and weight shapes.</summary>
    sealed record ConvGeometry(int N, int C, int H, int W, int M, int KH, int KW, int Group, int PadTop, int PadLeft,
        int StrideH, int StrideW, int DilH, int DilW, int OH, int OW);

    static ConvGeometry Geometry(OnnxNode node, Tensor x, Tensor w)
    {
        if (x.Rank != 4 || w.Rank != 4) throw new ArgumentException($"only 2-D convolutions are supported (input {ShapeUtil.Format(x.Shape)}, weights {ShapeUtil.Format(w.Shape)})");
        int group = (int)node.Int("group", 1);
        int n = x.Shape[0], c = x.Shape[1], h = x.Shape[2], wd = x.Shape[3], m = w.Shape[0], kh = w.Shape[2], kw = w.Shape[3];
        if (w.Shape[1] * group != c || m % group != 0) throw new ArgumentException($"weights {ShapeUtil.Format(w.Shape)} do not match {c} input channels in {group} groups");
        var s = node.Ints("strides") ?? [1, 1];
        var d = node.Ints("dilations") ?? [1, 1];
        var p = node.Ints("pads") ?? [0, 0, 0, 0];
        int sh = (int)s[0], sw = (int)s[1], dh = (int)d[0], dw = (int)d[1];
        int ekh = (kh - 1) * dh + 1, ekw = (kw - 1) * dw + 1;
        var autoPad = node.Attributes.TryGetValue("auto_pad", out var ap) ? ap.String ?? "NOTSET" : "NOTSET";
        int pt = (int)p[0], pl = (int)p[1], pb = (int)p[2], pr = (int)p[3];
        if (autoPad is "SAME_UPPER" or "SAME_LOWER")
        {
            int oh0 = (h + sh - 1) / sh, ow0 = (wd + sw - 1) / sw;
            int th = Math.Max(0, (oh0 - 1) * sh + ekh - h), tw = Math.Max(0, (ow0 - 1) * sw + ekw - wd);
            (pt, pb) = autoPad == "SAME_UPPER" ? (th / 2, th - th / 2) : (th - th / 2, th / 2);
            (pl, pr) = autoPad == "SAME_UPPER" ? (tw / 2, tw - tw / 2) : (tw - tw / 2, tw / 2);
        }
        else if (autoPad == "VALID") pt = pl = pb = pr = 0;
        int oh = (h + pt + pb - ekh) / sh + 1, ow = (wd + pl + pr - ekw) / sw + 1;
        return new ConvGeometry(n, c, h, wd, m, kh, kw, group, pt, pl, sh, sw, dh, dw, oh, ow);
    }

    /// <summary>Σ over the receptive field of term(input offset, weight offset, output channel); padding contributes nothing.</summary>
    static double[] ConvCore(ConvGeometry g, Func<int, int, int, double> term)
    {
        Allocatable([g.N, g.M, g.OH, g.OW]);
        var y = new double[g.N * g.M * g.OH * g.OW];
        int cPerGroup = g.C / g.Group, mPerGroup = g.M / g.Group;
        for (int n = 0; n < g.N; n++)
            for (int m = 0; m < g.M; m++)
                for (int oy = 0; oy < g.OH; oy++)
                    for (int ox = 0; ox < g.OW; ox++)
                    {
                        double acc = 0;
                        int c0 = m / mPerGroup * cPerGroup;
                        for (int c = 0; c < cPerGroup; c++)
                            for (int ky = 0; ky < g.KH; ky++)
                            {
                                int iy = oy * g.StrideH - g.PadTop + ky * g.DilH;
                                if (iy < 0 || iy >= g.H) continue;
                                for (int kx = 0; kx < g.KW; kx++)
                                {
                                    int ix = ox * g.StrideW - g.PadLeft + kx * g.DilW;
                                    if (ix < 0 || ix >= g.W) continue;
                                    acc += term(((n * g.C + c0 + c) * g.H + iy) * g.W + ix, ((m * cPerGroup + c) * g.KH + ky) * g.KW + kx, m);
                                }
                            }
                        y[((n * g.M + m) * g.OH + oy) * g.OW + ox] = acc;
                    }
        return y;
    }

    static Tensor Conv(OnnxNode node, Tensor x, Tensor w, Tensor? b)
    {
        var g = Geometry(node, x, w);
        var y = ConvCore(g, (i, k, _) => x.Data[i] * w.Data[k]);
        int plane = g.OH * g.OW;
        for (int i = 0; i < y.Length; i++) y[i] = (float)(y[i] + (b is null ? 0 : b.Data[i / plane % g.M]));
        return new Tensor(x.Type, [g.N, g.M, g.OH, g.OW], y);
    }

    static Tensor QLinearConv(OnnxNode node, Tensor x, Tensor xs, Tensor xzp, Tensor w, Tensor ws, Tensor wzp, Tensor ys, Tensor yzp, Tensor? b)
    {
        var g = Geometry(node, x, w);
        double Wz(int m) => wzp.Size == 1 ? wzp.Data[0] : wzp.Data[m];
        var acc = ConvCore(g, (i, k, m) => (x.Data[i] - xzp.Data[0]) * (w.Data[k] - Wz(m)));
        int plane = g.OH * g.OW;
        var y = new double[acc.Length];
        for (int i = 0; i < y.Length; i++)
        {
            int m = i / plane % g.M;
            double a = acc[i] + (b is null ? 0 : b.Data[m]);
            double scale = (float)xs.Data[0] * (float)(ws.Size == 1 ? ws.Data[0] : ws.Data[m]);
            y[i] = QuantMath.Quantize((float)(a * (float)scale), ys.Data[0], (long)yzp.Data[0], yzp.Type);
        }
        return new Tensor(yzp.Type, [g.N, g.M, g.OH, g.OW], y);
    }
}
