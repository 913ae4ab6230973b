// Draws each figure of the page from the JSON the server put beside it, with the plotly.js it serves.
function drawFigures() {
  for (const target of document.querySelectorAll("[data-figure]")) {
    const source = document.getElementById(target.dataset.figure);
    if (!source) continue;
    const figure = JSON.parse(source.textContent);
    // The page's own heading names each figure, so the figure's title is not drawn twice.
    const layout = { ...figure.layout, autosize: true, title: { text: "" } };
    layout.margin = { ...layout.margin, t: 16 };
    delete layout.width;
    window.Plotly.newPlot(target, figure.data, layout, { responsive: true, displaylogo: false });
  }
}

drawFigures();
