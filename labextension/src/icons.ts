import { LabIcon } from '@jupyterlab/ui-components';

import registrySvg from '../style/icons/registry.svg';

/** The registry's mark: a container image as a box of layers. */
export const registryIcon = new LabIcon({
  name: 'sregistry-jupyter:registry',
  svgstr: registrySvg
});
