# HwGen build and test image. It mirrors .ci/setup (the script CI runs on a fresh machine); it has not
# been built here, since the development machines have no Docker engine.
#   docker build -t hwgen .
#   docker run --rm hwgen ./test.sh
#   docker run --rm -v "$PWD/rtl-out:/src/rtl-out" hwgen sh -c './hwgen compile examples/mlp_digits/model.onnx && ./hwgen simulate rtl-out/mlp_digits'
FROM mcr.microsoft.com/dotnet/sdk:10.0
WORKDIR /src
COPY .ci/setup .ci/setup
RUN bash .ci/setup && rm -rf /var/lib/apt/lists/*
COPY . .
RUN dotnet build HwGen.sln -c Release --verbosity quiet -nologo
CMD ["./test.sh"]
