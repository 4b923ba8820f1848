//! Multi-layer perceptrons on candle tensors, initialised from the seeded stream.

use candle_core::{DType, Device, Tensor, Var};

use crate::rng::TrainRng;

/// A fully connected layer `y = x W + b` with `W` stored `[inputs, outputs]` (the layout
/// ONNX `MatMul` takes, so export copies it as is).
#[derive(Debug, Clone)]
pub struct Dense {
    /// `[inputs, outputs]` weights.
    pub weight: Var,
    /// `[outputs]` bias.
    pub bias: Var,
}

impl Dense {
    /// PyTorch's default initialisation: weights and bias uniform in ±1/√inputs.
    fn new(rng: &mut TrainRng, inputs: usize, outputs: usize) -> crate::Result<Self> {
        #[allow(clippy::cast_precision_loss)]
        let bound = 1.0 / (inputs as f64).sqrt();
        #[allow(clippy::cast_possible_truncation)]
        let mut draw =
            |n: usize| -> Vec<f32> { (0..n).map(|_| ((rng.uniform() * 2.0 - 1.0) * bound) as f32).collect() };
        let weight = Tensor::from_vec(draw(inputs * outputs), (inputs, outputs), &Device::Cpu)?;
        let bias = Tensor::from_vec(draw(outputs), outputs, &Device::Cpu)?;
        Ok(Self {
            weight: Var::from_tensor(&weight)?,
            bias: Var::from_tensor(&bias)?,
        })
    }

    fn forward(&self, x: &Tensor) -> crate::Result<Tensor> {
        Ok(x.matmul(self.weight.as_tensor())?
            .broadcast_add(self.bias.as_tensor())?)
    }

    /// Number of inputs.
    #[must_use]
    pub fn inputs(&self) -> usize {
        self.weight.as_tensor().dims()[0]
    }

    /// Number of outputs.
    #[must_use]
    pub fn outputs(&self) -> usize {
        self.weight.as_tensor().dims()[1]
    }

    /// Row-major `[inputs, outputs]` weights and the bias as plain vectors.
    ///
    /// # Errors
    /// candle errors.
    pub fn to_vecs(&self) -> crate::Result<(Vec<f32>, Vec<f32>)> {
        Ok((
            self.weight.as_tensor().flatten_all()?.to_vec1::<f32>()?,
            self.bias.as_tensor().to_vec1::<f32>()?,
        ))
    }
}

/// Dense layers with ReLU between them and no activation after the last.
#[derive(Debug, Clone)]
pub struct Mlp {
    /// The layers in order.
    pub layers: Vec<Dense>,
}

impl Mlp {
    /// An MLP through the given widths (`widths[0]` inputs, `widths[last]` outputs).
    ///
    /// # Errors
    /// candle errors.
    pub fn new(rng: &mut TrainRng, widths: &[usize]) -> crate::Result<Self> {
        let layers = widths
            .windows(2)
            .map(|w| Dense::new(rng, w[0], w[1]))
            .collect::<Result<_, _>>()?;
        Ok(Self { layers })
    }

    /// Applies the network to a `[rows, inputs]` tensor.
    ///
    /// # Errors
    /// candle errors (shape mismatches).
    pub fn forward(&self, x: &Tensor) -> crate::Result<Tensor> {
        self.forward_taps(x, &[self.layers.len().saturating_sub(1)])
    }

    /// The outputs of the layers numbered in `taps` (from 0; after the ReLU for all but
    /// the last layer) side by side, in network order.
    ///
    /// # Errors
    /// candle errors, or a tap past the last layer.
    pub fn forward_taps(&self, x: &Tensor, taps: &[usize]) -> crate::Result<Tensor> {
        if let Some(&tap) = taps.iter().find(|&&t| t >= self.layers.len()) {
            return Err(crate::Error::Invalid(format!(
                "layer {tap} does not exist: the network has {} layers",
                self.layers.len()
            )));
        }
        let mut h = x.clone();
        let mut outputs = Vec::new();
        for (i, layer) in self.layers.iter().enumerate() {
            h = layer.forward(&h)?;
            if i + 1 < self.layers.len() {
                h = h.relu()?;
            }
            if taps.contains(&i) {
                outputs.push(h.clone());
            }
        }
        if outputs.len() == 1 {
            Ok(outputs.swap_remove(0))
        } else {
            Ok(Tensor::cat(&outputs, 1)?)
        }
    }

    /// Every trainable variable.
    #[must_use]
    pub fn vars(&self) -> Vec<Var> {
        self.layers
            .iter()
            .flat_map(|l| [l.weight.clone(), l.bias.clone()])
            .collect()
    }

    /// A copy of the current weights, detached from the optimiser.
    ///
    /// # Errors
    /// candle errors.
    pub fn snapshot(&self) -> crate::Result<Self> {
        let copy = |v: &Var| -> crate::Result<Var> { Ok(Var::from_tensor(&v.as_tensor().copy()?)?) };
        let layers = self
            .layers
            .iter()
            .map(|l| {
                Ok(Dense {
                    weight: copy(&l.weight)?,
                    bias: copy(&l.bias)?,
                })
            })
            .collect::<crate::Result<_>>()?;
        Ok(Self { layers })
    }

    /// Output width.
    #[must_use]
    pub fn outputs(&self) -> usize {
        self.layers.last().map_or(0, Dense::outputs)
    }

    /// Runs the network on row-major `[rows, inputs]` values and returns row-major outputs.
    ///
    /// # Errors
    /// candle errors.
    pub fn apply(&self, inputs: &[f32], rows: usize) -> crate::Result<Vec<f32>> {
        self.apply_taps(inputs, rows, &[self.layers.len().saturating_sub(1)])
    }

    /// Like [`Mlp::apply`], but returns the outputs of the layers numbered in `taps`
    /// (from 0, ascending; after the ReLU for all but the last layer) side by side.
    ///
    /// # Errors
    /// candle errors, or a tap past the last layer.
    pub fn apply_taps(&self, inputs: &[f32], rows: usize, taps: &[usize]) -> crate::Result<Vec<f32>> {
        let width = self.layers.first().map_or(0, Dense::inputs);
        let x = Tensor::from_slice(inputs, (rows, width), &Device::Cpu)?;
        Ok(self
            .forward_taps(&x, taps)?
            .to_dtype(DType::F32)?
            .flatten_all()?
            .to_vec1::<f32>()?)
    }
}
